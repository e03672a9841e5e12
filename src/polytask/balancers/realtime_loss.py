"""Real-time loss normalisation (geometric mean of the losses)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("realtime_loss")
class RealtimeLossNormalization(LossWeighting):
    """``w_k = 1 / (T sg(L_k(t)))``: each loss divided by its own current (stopped-gradient)
    value, so ``sum_k w_k grad L_k = (1/T) sum_k grad log L_k``, the gradient of the log of the
    **geometric mean** of the losses (GLS: Chennupati et al., "MultiNet++", CVPR Workshops
    2019; reference text 05). Scale invariant; not shift invariant.

    Args:
        eps: floor on the losses (1e-12).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"loss_scale_invariant", "order_invariant"})

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def loss_weights(self, losses: Tensor) -> Tensor:
        return 1.0 / (losses.numel() * losses.clamp_min(self.eps))
