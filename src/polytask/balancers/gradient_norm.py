"""Gradient-norm normalisation: each task's gradient scaled to unit norm."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register


@register("gradient_norm")
class GradientNormNormalization(GramianWeighting):
    """``w_k = 1 / (T sg(||grad L_k||))``: the mean of the unit-norm task gradients
    (reference text 05, "weights from the gradient state"). Invariant to both scaling and
    shifting a task's loss. The norms are the square roots of the Gramian's diagonal, at the
    level the engine runs (features or shared parameters).

    Args:
        eps: floor on the gradient norms (1e-12); a task with a zero gradient gets weight
            ``1 / (T eps)`` times a zero gradient, i.e. no contribution.
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {"order_invariant", "scale_invariant", "loss_scale_invariant"}
    )

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        norms = gramian.diagonal().clamp_min(0).sqrt()
        return 1.0 / (gramian.shape[0] * norms.clamp_min(self.eps))
