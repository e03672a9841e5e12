"""Equal weighting: the mean of the task losses."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("equal")
class EqualWeighting(LossWeighting):
    """The mean of the task losses, ``L = (1/T) sum_t L_t`` (weights ``w_t = 1/T``).

    The baseline every method is compared with ("uniform scaling" in Sener & Koltun 2018).
    It is a mean, not a sum: use ``fixed`` for an explicit sum or any other fixed weights.
    No hyper-parameters.
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {"order_invariant", "weights_sum_to_one", "constant_weights"}
    )

    def loss_weights(self, losses: Tensor) -> Tensor:
        return torch.full_like(losses, 1.0 / losses.numel())
