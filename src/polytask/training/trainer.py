"""The Trainer: it assembles a training run's parts and holds the public API.

Each part lives in its own module and can be used or replaced alone: settings and result
(:mod:`~polytask.training.trainer_config`), the epoch loop (:mod:`~polytask.training.loop`),
one step's gradients (:mod:`~polytask.training.step`), evaluation
(:mod:`~polytask.training.evaluation`), model selection and early stopping
(:mod:`~polytask.training.selection`), the logging window of task weights and gradient
cosines (:mod:`~polytask.training.step_window`), checkpoint state and run settings
(:mod:`~polytask.training.trainer_state`), the run folder's lock and log
(:mod:`~polytask.training.run_folder`), loggers (:mod:`~polytask.training.logger`), hooks
(:mod:`~polytask.training.callbacks`) and signals (:mod:`~polytask.training.interrupts`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polytask.balancers.base import Balancer
from polytask.balancers.registry import name_of
from polytask.data.batching import Batches, IndexBatcher, IterableBatches
from polytask.data.dataset import Batch, TensorTaskDataset
from polytask.models.base import MultiTaskModel
from polytask.tasks.target_checks import check_targets
from polytask.tasks.taskset import TaskSet
from polytask.training import checkpoint as ckpt
from polytask.training import trainer_state
from polytask.training.allocator import glibc_version, keep_freed_memory
from polytask.training.callbacks import Callback, StepFunction
from polytask.training.evaluation import evaluate, monitor_direction, monitor_score
from polytask.training.interrupts import StopRequest
from polytask.training.load_run import write_model_record
from polytask.training.logger import CsvLogger, JsonlLogger, Logger, TensorBoardLogger
from polytask.training.loop import run_epochs
from polytask.training.run_folder import RunFolder
from polytask.training.selection import ModelSelection
from polytask.training.sizing import warn_if_few_steps
from polytask.training.step import GradientStep
from polytask.training.step_window import StepWindow
from polytask.training.trainer_config import (
    FitResult,
    StopTrainingSignal,
    TrainerConfig,
    parameter_count,
    resolve_device,
)

__all__ = [
    "FitResult",
    "StopTrainingSignal",
    "Trainer",
    "TrainerConfig",
    "parameter_count",
    "resolve_device",
]


class Trainer:
    """Trains a :class:`~polytask.models.MultiTaskModel` on a :class:`~polytask.TaskSet` with
    any balancer, through :func:`polytask.backward`.

    Each step: forward (bfloat16 autocast on CUDA if ``amp``), ``tasks.losses`` (masked,
    finite-checked), ``polytask.backward`` at the configured level, optional clipping,
    ``optimizer.step()`` and a per-step scheduler. Model selection and early stopping read the
    validation split only; the test split is for :meth:`evaluate` after :meth:`fit`.

    Checkpoints (``run_dir/checkpoints/last.pt``) hold model, optimizer, scheduler, balancer,
    batcher and RNG states, the selection state and the run's settings, are written
    atomically, and a run resumed from one (``fit(..., resume=True)``) is bit-identical on
    CPU to an uninterrupted run; a resume under other settings is refused. Ctrl-C or
    ``SIGTERM`` finishes the step, writes a checkpoint and raises
    :class:`~polytask.training.interrupts.TrainingInterrupted`.

    Args:
        model: the model (moved to the configured device).
        tasks: the task set.
        balancer: the balancer (bound to the tasks and moved to the device; learnt
            parameters, if any, must be in the optimizer, as
            :func:`~polytask.training.optim.build_optimizer` does).
        optimizer: the optimizer.
        scheduler: an optional per-step learning-rate scheduler.
        config: :class:`~polytask.training.trainer_config.TrainerConfig`.
        callbacks: :class:`~polytask.training.callbacks.Callback` objects, or functions
            ``f(trainer, step)`` called after every step; raise
            :class:`~polytask.training.StopTrainingSignal` to stop.
        run_settings: further settings that define the run (the experiment passes its data
            set and model options); a resume under other settings is refused.
        loggers: further loggers (anything with ``write(kind, **fields)``) beside the run
            folder's JSON lines, CSV (``config.csv``) and TensorBoard (``config.tensorboard``).
    """

    def __init__(
        self,
        model: MultiTaskModel,
        tasks: TaskSet,
        balancer: Balancer,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        config: TrainerConfig | None = None,
        callbacks: Sequence[Callback | StepFunction] = (),
        run_settings: Mapping[str, Any] | None = None,
        loggers: Sequence[Logger] = (),
    ) -> None:
        self.config = cfg = config or TrainerConfig()
        missing = [t for t in tasks.names if t not in model.task_names]
        if missing:
            raise ValueError(
                f"the model has no head for task(s) {missing}; "
                f"its tasks are {list(model.task_names)}"
            )
        balancer.check_level(None if balancer.needs == "losses" else cfg.level)
        balancer.bind_tasks(tasks)  # now: learnt per-task parameters exist, move with it
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.balancer = balancer.to(self.device)
        self.tasks, self.optimizer, self.scheduler = tasks, optimizer, scheduler
        self.callbacks: Sequence[Callback | StepFunction] = callbacks
        self.run_settings = dict(run_settings or {})
        self.started_settings: dict[str, Any] | None = None
        self.step = self.skipped_steps = 0
        self.history: list[dict[str, Any]] = []
        self.selection = ModelSelection(monitor_direction(tasks, cfg.monitor), cfg.patience)
        self.window = StepWindow()
        self.run_dir = Path(cfg.run_dir) if cfg.run_dir else None
        # TensorBoard first: a missing extra fails before anything is written.
        board = (
            [TensorBoardLogger(self.run_dir / "tensorboard")]
            if self.run_dir and cfg.tensorboard
            else []
        )
        self.logger = JsonlLogger(self.run_dir / "metrics.jsonl" if self.run_dir else None)
        self.loggers: list[Logger] = [self.logger, *loggers]
        if self.run_dir is not None and cfg.csv:
            self.loggers.append(CsvLogger(self.run_dir / "metrics.csv"))
        self.loggers.extend(board)
        self.gradient_step: GradientStep = GradientStep(self)
        # False on a data-parallel rank other than 0 (polytask.distributed.data_parallel):
        # it reads the run folder's checkpoint to resume, and writes nothing there.
        self.writes = True
        # check_resume's checkpoint, its state and the settings it was checked against
        self._checked: tuple[Path, dict[str, Any], dict[str, Any]] | None = None
        self.stop_request = StopRequest()

    def log(self, kind: str, **fields: Any) -> None:
        """Write one record to every logger."""
        for logger in self.loggers:
            logger.write(kind, **fields)

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: Batch) -> Tensor | None:
        """One optimizer step on ``batch``; returns the detached loss vector ``(T,)`` (on the
        device), or ``None`` when the step was skipped (a non-finite loss, or no task with a
        label in the batch)."""
        losses, result = self.gradient_step(batch)
        if result.skipped:
            self.skipped_steps += 1
            return None
        self.window.observe(result.weights, result.gramian)
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return losses.detached()

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self, dataset: TensorTaskDataset | Iterable[Any], batch_size: int | None = None
    ) -> dict[str, Any]:
        """Mean loss and metrics per task on ``dataset``
        (:func:`~polytask.training.evaluation.evaluate`)."""
        size = batch_size or self.config.eval_batch_size
        autocast = self.gradient_step.autocast()
        return evaluate(self.model, self.tasks, dataset, self.device, size, autocast)

    def score(self, evaluation: dict[str, Any]) -> float:
        """The ``monitor`` value of an :meth:`evaluate` result."""
        return monitor_score(evaluation, self.config.monitor)

    # ------------------------------------------------------------------ checkpoints
    def settings(self) -> dict[str, Any]:
        """The settings that define this run (:func:`~polytask.training.trainer_state.
        run_settings`)."""
        return trainer_state.run_settings(self)

    def check_resume(self, path: str | Path | None = None) -> None:
        """Raise :class:`~polytask.training.run_folder.RunMismatchError` if the checkpoint at
        ``path`` (default: this run folder's) was written under other settings."""
        path = Path(path) if path is not None else self.checkpoint_path()
        if path is not None and path.is_file():
            state = ckpt.load(path, self.device)
            settings = self.settings()
            trainer_state.check_settings(self, state, settings)
            self._checked = (path, state, settings)  # fit resumes from it, not checking twice

    def state_dict(self, batcher: Batches) -> dict[str, Any]:
        """Everything needed to continue training exactly from here."""
        return trainer_state.state_dict(self, batcher)

    def load_state_dict(self, state: dict[str, Any], batcher: Batches) -> None:
        """Restore :meth:`state_dict`; raises naming the mismatch for another model's state."""
        trainer_state.load_state_dict(self, state, batcher)

    def checkpoint_path(self) -> Path | None:
        """``run_dir/checkpoints/last.pt`` (``None`` without a run folder)."""
        return self.run_dir / "checkpoints" / "last.pt" if self.run_dir else None

    def save_checkpoint(self, batcher: Batches) -> Path | None:
        """Write ``last.pt`` atomically (no-op without a run folder)."""
        path = self.checkpoint_path()
        if path is None or not self.writes:
            return None
        return ckpt.save_atomic(self.state_dict(batcher), path)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: TensorTaskDataset | Iterable[Any],
        val: TensorTaskDataset | Iterable[Any] | None = None,
        *,
        resume: bool | str | Path = False,
        restore_best: bool = True,
        batcher: Batches | None = None,
    ) -> FitResult:
        """Train for ``config.epochs`` epochs (or ``max_steps`` steps).

        Args:
            train: training data: a :class:`~polytask.data.TensorTaskDataset` (batched by
                index, the fast path, exact resume), or any re-iterable source of batches - a
                ``torch.utils.data.DataLoader`` or a stream - whose items are
                ``(inputs, {task: targets})`` (see :class:`~polytask.data.IterableBatches`;
                ``config.batch_size`` is then the source's business).
            val: validation data for model selection and early stopping (never the test set),
                either kind.
            resume: ``True`` to continue from ``run_dir/checkpoints/last.pt`` if it exists, or
                a checkpoint path to continue from; refused if its settings differ.
            restore_best: load the best validation weights into the model at the end.
            batcher: how ``train`` is batched (default: an
                :class:`~polytask.data.IndexBatcher` of ``config.batch_size``, seeded by
                ``config.seed``); for example a
                :class:`~polytask.data.samplers.GroupBatcher` with a task sampler when tasks
                have their own datasets. Its state is checkpointed with the run.
        """
        if isinstance(train, TensorTaskDataset):
            missing = [t for t in self.tasks.names if t not in train.targets]
            if missing:
                raise KeyError(f"training data has no targets for task(s) {missing}")
        for name, part in (("training data", train), ("validation data", val)):
            if isinstance(part, TensorTaskDataset):  # once, before any step (a bad class is a
                check_targets(self.tasks, part.targets, name)  # device assert on CUDA)
        if batcher is None:
            batcher = (
                IndexBatcher(train, self.config.batch_size, shuffle=True, seed=self.config.seed)
                if isinstance(train, TensorTaskDataset)
                else IterableBatches(train)
            )
        if isinstance(train, TensorTaskDataset) and self.config.max_steps is None:
            warn_if_few_steps(len(train), self.config.epochs * len(batcher))
        # One process at a time in a run folder (a lock the kernel drops with the process).
        locked = self.run_dir is not None and self.writes
        with RunFolder(self.run_dir) if locked and self.run_dir else contextlib.nullcontext():
            self._start(batcher, resume)
            stopped_early = run_epochs(self, batcher, val)
        if restore_best and self.selection.best_state is not None:
            self.model.load_state_dict(self.selection.best_state)
        best = self.selection
        return FitResult(
            best.best_epoch, best.best_score, list(self.history), self.step,
            self.skipped_steps, stopped_early,
        )  # fmt: skip

    def _start(self, batcher: Batches, resume: bool | str | Path) -> None:
        """Set up the process, then resume from a checkpoint or log the start."""
        cfg = self.config
        if cfg.keep_freed_memory and self.device.type == "cpu" and glibc_version() is not None:
            keep_freed_memory()
        torch.manual_seed(cfg.seed)
        self.started_settings = self.settings()
        path = self.checkpoint_path() if resume is True else (Path(resume) if resume else None)
        if path is not None and path.is_file():
            checked, self._checked = self._checked, None
            reuse = checked is not None and checked[0] == path
            state = checked[1] if checked is not None and reuse else ckpt.load(path, self.device)
            if not (reuse and checked is not None and checked[2] == self.started_settings):
                trainer_state.check_settings(self, state, self.started_settings)
            try:
                self.load_state_dict(state, batcher)
            except (KeyError, ValueError) as error:  # a foreign or damaged checkpoint
                what = f"lacks {error.args[0]!r}" if isinstance(error, KeyError) else str(error)
                raise ckpt.CheckpointError(
                    f"checkpoint {path} cannot be resumed ({what}); run with --restart (or "
                    "delete it) to start the run over"
                ) from error
            self.log("resume", step=self.step, checkpoint=str(path))
        elif resume and resume is not True:
            raise FileNotFoundError(f"no checkpoint to resume from at {path}")
        else:
            if self.run_dir is not None and self.writes:  # how to rebuild the model (load_run)
                write_model_record(self.run_dir, self.model, list(self.tasks))
            self.log(
                "start",
                config=asdict(cfg),
                tasks=self.tasks.names,
                balancer=name_of(self.balancer),
                parameters=parameter_count(self.model),
            )
