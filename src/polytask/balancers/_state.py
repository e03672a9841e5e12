"""Helpers for balancers whose state is sized by the number of tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask


class RunningLosses:
    """Per-task statistics of the loss vector kept across steps (device tensors, no sync).

    Every statistic is per task, so that a task absent from a step (no label in the batch,
    see :mod:`polytask.balancers._restrict`) simply does not contribute: its entries are
    untouched, and a task's first loss is the one of its first present step.

    Attributes:
        first: each task's loss at its first step (NaN before it; ``None`` before any step).
        total, count: per-task sum of the losses and number of steps, since the last
            :meth:`reset_window`, or for :meth:`update` with a ``limit``, up to it.
    """

    def __init__(self) -> None:
        self.first: Tensor | None = None
        self.total: Tensor | None = None
        self.count: Tensor | None = None

    @staticmethod
    def task_state(prefix: str) -> dict[str, PerTask]:
        """The :attr:`~polytask.balancers.Balancer.task_state` entries of a
        ``RunningLosses`` held in the balancer's attribute ``prefix``."""
        return {
            f"{prefix}.first": PerTask(),
            f"{prefix}.total": PerTask(fill=0.0),
            f"{prefix}.count": PerTask(fill=0.0),
        }

    def update(self, losses: Tensor, limit: int | None = None) -> None:
        """Record one step's detached losses ``(T,)``; with ``limit``, only for the tasks
        that have fewer than ``limit`` steps recorded."""
        losses = losses.detach()
        if self.first is None:
            self.first = losses.clone()
        else:
            self.first = torch.where(torch.isnan(self.first), losses, self.first.to(losses))
        if self.total is None or self.count is None:
            self.total = torch.zeros_like(losses)
            self.count = torch.zeros_like(losses)
        take = torch.ones_like(losses) if limit is None else (self.count < limit).to(losses)
        self.total = self.total.to(losses) + take * losses
        self.count = self.count.to(losses) + take

    def mean(self) -> Tensor | None:
        """Mean loss per task over the current window (NaN for a task with no step in it)."""
        if self.total is None or self.count is None:
            return None
        return torch.where(self.count > 0, self.total / self.count.clamp_min(1), torch.nan)

    def reset_window(self) -> None:
        """Start a new averaging window (``first`` is kept)."""
        if self.total is not None and self.count is not None:
            self.total = torch.zeros_like(self.total)
            self.count = torch.zeros_like(self.count)

    def state(self) -> dict[str, Any]:
        """Plain-dict state for ``get_extra_state``."""
        return {"first": self.first, "total": self.total, "count": self.count}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` (also from checkpoints that kept one step count for all
        tasks)."""
        self.first, self.total, count = state["first"], state["total"], state["count"]
        if isinstance(count, int):
            count = None if self.total is None else torch.full_like(self.total, float(count))
        self.count = count
