"""Normalise the ways a user can hand task losses to the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from polytask.gradients.unstack import Unstacked
from polytask.tasks.task import Role
from polytask.tasks.taskset import TaskLosses

LossesLike = TaskLosses | Mapping[str, Tensor] | Sequence[Tensor] | Tensor


@dataclass
class LossList:
    """Task losses as separate scalar autograd nodes, with names and task metadata.

    Attributes:
        names: task names in order (``task_0``, ``task_1`` ... when none were given).
        values: the scalar losses in the same order.
        roles: ``{task: role}``.
        prior_weights: ``{task: weight}``.
        skip: ``True`` when the step must be skipped (a non-finite loss under ``"skip"``).
        present: per task, whether the batch had a label for it (all ``True`` unless the
            losses came from ``TaskSet.losses`` or a :class:`TaskLosses` that says otherwise).
        counts: labelled elements per task ``(T,)`` (from :class:`TaskLosses`), else ``None``.
    """

    names: list[str]
    values: list[Tensor]
    roles: dict[str, Role] = field(default_factory=dict)
    prior_weights: dict[str, float] = field(default_factory=dict)
    skip: bool = False
    present: list[bool] = field(default_factory=list)
    unstacked: Unstacked | None = None
    counts: Tensor | None = None

    def __post_init__(self) -> None:
        if not self.present:
            self.present = [True] * len(self.values)

    def stack(self) -> Tensor:
        """The loss vector ``(T,)`` (a new autograd node)."""
        return torch.stack(self.values)

    def subset(self, index: list[int]) -> LossList:
        """The tasks at positions ``index`` only (all present)."""
        names = [self.names[i] for i in index]
        return LossList(
            names,
            [self.values[i] for i in index],
            {n: self.roles[n] for n in names if n in self.roles},
            {n: self.prior_weights[n] for n in names if n in self.prior_weights},
            self.skip,
        )


def as_loss_list(losses: LossesLike) -> LossList:
    """Accept :class:`TaskLosses`, ``{name: scalar}``, a sequence of scalars or a 1-D tensor.

    A 1-D tensor made by ``torch.stack`` of scalars is taken apart again
    (:class:`~polytask.gradients.unstack.Unstacked`: per-task gradients reach only their own
    head); one made otherwise works but is the slow form, with a warning. Prefer
    ``TaskSet.losses`` or a dict.
    """
    if isinstance(losses, TaskLosses):
        return LossList(
            losses.names,
            losses.values_list(),
            dict(losses.roles),
            dict(losses.prior_weights),
            losses.skip,
            list(losses.present) if losses.present is not None else [],
            counts=losses.counts,
        )
    unstacked = None
    if isinstance(losses, Tensor):
        if losses.dim() != 1 or losses.numel() == 0:
            raise ValueError(
                "a loss tensor must be 1-D with one entry per task, "
                f"got shape {tuple(losses.shape)}"
            )
        values = list(losses.unbind())
        names = [f"task_{i}" for i in range(len(values))]
        unstacked = Unstacked(losses) if losses.requires_grad and len(values) > 1 else None
    elif isinstance(losses, Mapping):
        names = [str(k) for k in losses]
        values = list(losses.values())
    else:
        values = list(losses)
        names = [f"task_{i}" for i in range(len(values))]
    if not values:
        raise ValueError("backward needs at least one task loss")
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, Tensor) or value.dim() != 0:
            raise ValueError(f"task {name!r}: each loss must be a scalar tensor")
        if not value.requires_grad:
            raise ValueError(
                f"task {name!r}: the loss does not require grad; was it computed under "
                "torch.no_grad() or from detached predictions?"
            )
    return LossList(
        names, values, dict.fromkeys(names, "main"), dict.fromkeys(names, 1.0),
        unstacked=unstacked,
    )  # fmt: skip
