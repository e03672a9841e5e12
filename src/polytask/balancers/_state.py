"""Helpers for balancers whose state is sized by the number of tasks."""

from __future__ import annotations

from typing import Any

from torch import Tensor


class RunningLosses:
    """Per-task statistics of the loss vector kept across steps (device tensors, no sync).

    Attributes:
        first: the losses of the first step (``None`` before it).
        total, count: sum and number of steps since the last :meth:`reset_window`.
    """

    def __init__(self) -> None:
        self.first: Tensor | None = None
        self.total: Tensor | None = None
        self.count = 0

    def update(self, losses: Tensor) -> None:
        """Record one step's detached losses ``(T,)``."""
        losses = losses.detach()
        if self.first is None:
            self.first = losses.clone()
        self.total = losses.clone() if self.total is None else self.total + losses
        self.count += 1

    def mean(self) -> Tensor | None:
        """Mean loss over the current window."""
        return None if self.total is None else self.total / self.count

    def reset_window(self) -> None:
        """Start a new averaging window (``first`` is kept)."""
        self.total, self.count = None, 0

    def state(self) -> dict[str, Any]:
        """Plain-dict state for ``get_extra_state``."""
        return {"first": self.first, "total": self.total, "count": self.count}

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.first, self.total, self.count = state["first"], state["total"], state["count"]
