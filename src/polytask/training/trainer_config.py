"""The trainer's settings (:class:`TrainerConfig`), its result (:class:`FitResult`), the
callbacks' stop signal and the device choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from polytask.gradients.jacobian import Method
from polytask.gradients.protocol import Level
from polytask.training.config import FieldError, check_range


@dataclass
class TrainerConfig:
    """How to train.

    Attributes:
        epochs: passes over the training data.
        max_steps: stop after this many optimizer steps in total (``None``: no limit).
        batch_size: training rows per step.
        eval_batch_size: rows per evaluation batch.
        level: where gradient methods take per-task gradients: ``representation`` (w.r.t.
            the shared features; cheap) or ``parameter`` (w.r.t. the shared parameters; exact).
            Ignored by loss weightings.
        gradient_method: ``auto``, ``loop`` or ``vmap`` (see :mod:`polytask.gradients`).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1`` ...
        amp: mixed precision (bfloat16 autocast of the forward) on CUDA; ignored on CPU.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        monitor: validation quantity for model selection and early stopping: ``loss`` (mean
            validation loss over tasks) or ``task/metric`` such as ``left/accuracy``.
        patience: stop after this many epochs without improvement (``None``: never).
        log_every: read losses back from the device and log every this many steps.
        checkpoint_every: also write ``last.pt`` every this many steps (0: epoch ends only).
        progress: show a progress bar (stderr).
        seed: seed of parameter-free randomness (data order; torch's global RNG at start).
        run_dir: folder for ``metrics.jsonl`` and ``checkpoints/`` (``None``: write nothing).
        tensorboard: also write TensorBoard scalars to ``run_dir/tensorboard`` (needs the
            ``tensorboard`` extra).
        csv: also write every logged number to ``run_dir/metrics.csv`` (one row each:
            ``kind, step, epoch, name, value``).
        keep_freed_memory: on the CPU with glibc (Linux), :meth:`Trainer.fit` first makes
            ``malloc`` keep freed memory for the next step instead of returning it to the OS
            (:func:`~polytask.training.allocator.keep_freed_memory`; process-wide; a Gramian
            step's large temporaries are then not page-faulted in again every step).
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 256
    eval_batch_size: int = 1024
    level: Level = "representation"
    gradient_method: Method = "auto"
    device: str = "auto"
    amp: bool = False
    grad_clip: float | None = None
    monitor: str = "loss"
    patience: int | None = None
    log_every: int = 50
    checkpoint_every: int = 0
    progress: bool = True
    seed: int = 0
    run_dir: str | None = None
    tensorboard: bool = False
    csv: bool = False
    keep_freed_memory: bool = True

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("max_steps", self.max_steps, low=1, optional=True)
        check_range("batch_size", self.batch_size, low=1)
        check_range("eval_batch_size", self.eval_batch_size, low=1)
        check_range("grad_clip", self.grad_clip, above=0, optional=True)
        check_range("patience", self.patience, low=1, optional=True)
        check_range("log_every", self.log_every, low=1)
        check_range("checkpoint_every", self.checkpoint_every, low=0)
        if self.level not in ("representation", "parameter"):
            raise FieldError(
                "level", f"must be 'representation' or 'parameter', got {self.level!r}"
            )
        for name in ("tensorboard", "csv"):
            if getattr(self, name) and self.run_dir is None:
                raise FieldError(name, "true needs a run_dir to write into")


@dataclass
class FitResult:
    """Outcome of :meth:`Trainer.fit`.

    Attributes:
        best_epoch: epoch (1-based) whose validation ``monitor`` was best (0 if no validation).
        best_score: that value.
        history: one record per epoch (train losses, validation losses and metrics).
        steps: optimizer steps taken in total; skipped_steps: steps skipped for a non-finite
            loss; stopped_early: whether patience ended training.
    """

    best_epoch: int
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    skipped_steps: int = 0
    stopped_early: bool = False


class StopTrainingSignal(Exception):  # noqa: N818  (a signal, not an error)
    """Raised by a callback to end training cleanly after the current step."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; otherwise ``torch.device(name)``, checked.

    Raises:
        ValueError: the name is not a device, or names CUDA on a machine without it (the
            message gives the choices).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"device {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} was asked for but this machine has no CUDA; use device=auto "
            "(CUDA when there is one) or device=cpu"
        )
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise ValueError(f"device {name!r}: this machine has {count} CUDA device(s)")
    return device


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
