"""Nash-MTL: the Nash bargaining solution among tasks."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import alpha_fair_weights


@register("nash_mtl")
class NashMTL(GramianWeighting):
    """Nash-MTL (Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022): the
    update ``d = J^T w`` is the Nash bargaining solution, characterised by
    ``G w = 1 / w`` (element-wise), i.e. ``<g_i, d> = 1 / w_i`` for every task: each task's
    share of progress is inversely proportional to its weight. The paper approximates the
    solution with a sequence of convex programs (CVXPY); here it is solved exactly by Newton's
    method on the Gramian (:func:`~polytask.balancers.solvers.alpha_fair_weights`).

    The scale is intrinsic to the method (``||d||`` does not depend on the loss scale in the
    way a mean does); clip gradients (``schedule.grad_clip``) as the paper does (max norm 1).

    Args:
        max_iter: Newton iterations at most (100).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant", "scale_invariant"})

    def __init__(self, max_iter: int = 100) -> None:
        super().__init__()
        self.max_iter = max_iter

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        return alpha_fair_weights(gramian, 1.0, self.max_iter)
