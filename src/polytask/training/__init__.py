"""Training: the Trainer, checkpoints, logs, optimizers (``polytask.training``)."""

from polytask.training.allocator import keep_freed_memory
from polytask.training.callbacks import Callback
from polytask.training.checkpoint import load as load_checkpoint
from polytask.training.checkpoint import save_atomic
from polytask.training.interrupts import TrainingInterrupted
from polytask.training.load_run import LoadedRun, load_run
from polytask.training.logger import CsvLogger, JsonlLogger, Logger, read_jsonl
from polytask.training.optim import build_optimizer, build_scheduler
from polytask.training.run_folder import RunFolder, RunFolderInUseError, RunMismatchError
from polytask.training.trainer import (
    FitResult,
    StopTrainingSignal,
    Trainer,
    TrainerConfig,
    parameter_count,
    resolve_device,
)

__all__ = [
    "Callback",
    "CsvLogger",
    "FitResult",
    "JsonlLogger",
    "LoadedRun",
    "Logger",
    "RunFolder",
    "RunFolderInUseError",
    "RunMismatchError",
    "StopTrainingSignal",
    "Trainer",
    "TrainerConfig",
    "TrainingInterrupted",
    "build_optimizer",
    "build_scheduler",
    "keep_freed_memory",
    "load_checkpoint",
    "load_run",
    "parameter_count",
    "read_jsonl",
    "resolve_device",
    "save_atomic",
]
