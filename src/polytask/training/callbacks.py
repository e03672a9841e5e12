"""Callbacks: code of your own at the trainer's step, epoch and validation ends.

Subclass :class:`Callback` and override the hooks you need, or pass a plain function
``f(trainer, step)`` (called at each step end). Raise
:class:`~polytask.training.StopTrainingSignal` from a hook to end training cleanly (a
checkpoint is written first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polytask.training.trainer import Trainer


class Callback:
    """Hooks the trainer calls; each does nothing unless overridden."""

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        """After every optimizer step (``step`` counts them from 1)."""

    def on_validation_end(self, trainer: Trainer, evaluation: dict[str, Any]) -> None:
        """After each validation, with :func:`~polytask.training.evaluation.evaluate`'s
        result."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After each epoch, with the epoch's record (as logged)."""


StepFunction = Callable[["Trainer", int], None]


class FunctionCallback(Callback):
    """A plain function ``f(trainer, step)`` as a step-end callback."""

    def __init__(self, function: StepFunction) -> None:
        self.function = function

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self.function(trainer, step)


def as_callbacks(items: Sequence[Callback | StepFunction]) -> list[Callback]:
    """Callbacks from a mix of :class:`Callback` objects and step functions."""
    return [item if isinstance(item, Callback) else FunctionCallback(item) for item in items]
