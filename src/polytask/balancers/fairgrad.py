"""FairGrad: alpha-fair task weighting."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import alpha_fair_weights


@register("fairgrad")
class FairGrad(GramianWeighting):
    """FairGrad (Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024):
    allocate progress by alpha-fairness, ``<g_i, d> = w_i^(-1/alpha)`` with ``d = J^T w``,
    i.e. ``(G w)_i = w_i^(-1/alpha)``. ``alpha = 1`` is proportional fairness (Nash-MTL's
    bargaining solution); larger ``alpha`` moves towards max-min fairness (helping the worst
    task), smaller towards utilitarian (the mean). Solved exactly by Newton's method
    (:func:`~polytask.balancers.solvers.alpha_fair_weights`).

    Args:
        alpha: fairness parameter (> 0; 2.0 by default).
        max_iter: Newton iterations at most (100).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    def __init__(self, alpha: float = 2.0, max_iter: int = 100) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.max_iter = max_iter

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        return alpha_fair_weights(gramian, self.alpha, self.max_iter)
