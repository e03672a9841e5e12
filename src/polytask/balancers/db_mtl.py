"""DB-MTL's loss-scale balancing: the logarithm of each loss."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("db_mtl")
class DBMTLLogScaling(LossWeighting):
    """Loss-scale balancing of DB-MTL (Lin et al., "Dual-Balancing for Multi-Task Learning",
    arXiv 2308.12029, 2023): optimise ``(1/T) sum_k log(L_k + eps)``, whose gradient is
    ``sum_k grad L_k / (T (L_k + eps))``, i.e. weights ``w_k = 1 / (T (L_k + eps))``.

    This is the loss-scale half of DB-MTL; its gradient-magnitude half (an EMA of per-task
    gradients rescaled to the largest norm) needs the Jacobian and is not part of this class.
    With ``eps -> 0`` the update equals :class:`RealtimeLossNormalization`'s.

    Args:
        eps: added inside the logarithm (1e-8, as in the paper's code).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def loss_weights(self, losses: Tensor) -> Tensor:
        return 1.0 / (losses.numel() * (losses + self.eps))
