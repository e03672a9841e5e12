"""LBTW: loss-balanced task weighting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers._state import RunningLosses
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("lbtw")
class LBTW(LossWeighting):
    """Loss-Balanced Task Weighting (Liu, Liang & Gitter, AAAI 2019; reference text 05):

    ``w_k(t) = (L_k(t) / L_k(0))^alpha / T``

    A task whose loss has fallen far (relative to its first batch) is weighted down, which
    keeps fast tasks from dominating and reduces negative transfer.

    Args:
        alpha: exponent (0.5, the paper's recommended value; 0 gives equal weighting).
        eps: floor on ``L_k(0)`` (1e-12).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    def __init__(self, alpha: float = 0.5, eps: float = 1e-12) -> None:
        super().__init__()
        self.alpha = alpha
        self.eps = eps
        self.history = RunningLosses()

    task_state: ClassVar[Mapping[str, PerTask]] = RunningLosses.task_state("history")

    def loss_weights(self, losses: Tensor) -> Tensor:
        self.history.update(losses, limit=1)
        assert self.history.first is not None
        ratio = losses / self.history.first.clamp_min(self.eps)
        return ratio.clamp_min(0) ** self.alpha / losses.numel()

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "history": self.history.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.history.load(state["history"])
