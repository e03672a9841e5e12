"""Task weights and gradient cosines averaged over a logging window, kept on the device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor


class StepWindow:
    """Sums of the steps' task weights and gradient cosines since the last :meth:`summary`
    (device tensors: nothing is read back to the host until the log is written)."""

    def __init__(self) -> None:
        self.weights: Tensor | None = None
        self.cosines: Tensor | None = None
        self.steps = 0

    def observe(self, weights: Tensor | None, gramian: Tensor | None) -> None:
        """Add one step's weights ``(T,)`` and, for gradient methods, its Gramian."""
        if weights is None:
            return
        w = weights.detach().double()
        self.weights = w if self.weights is None else self.weights + w
        if gramian is not None:
            g = gramian.detach().double()
            norms = g.diagonal().clamp_min(1e-300).sqrt()
            cosine = g / (norms[:, None] * norms[None, :])
            self.cosines = cosine if self.cosines is None else self.cosines + cosine
        self.steps += 1

    def summary(self, names: Sequence[str]) -> dict[str, Any]:
        """``{"weights": {task: mean}, "cosine": T x T}`` over the window, then a new one."""
        summary: dict[str, Any] = {}
        if self.steps and self.weights is not None:
            mean = (self.weights / self.steps).tolist()
            summary["weights"] = dict(zip(names, mean, strict=True))
            if self.cosines is not None:
                summary["cosine"] = (self.cosines / self.steps).tolist()
        self.weights, self.cosines, self.steps = None, None, 0
        return summary
