"""IMTL-L: learnable loss scales that make the scaled losses equal."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers._learnt import LearntPerTask
from polytask.balancers.registry import register


@register("imtl_l")
class IMTLL(LearntPerTask):
    """The loss-balance part of IMTL (Liu et al., "Towards Impartial Multi-task Learning",
    ICLR 2021). With learnable ``s_k``:

    ``L = (1/T) sum_k [ exp(s_k) L_k - s_k ]``  (the paper's sum divided by ``T``),

    whose optimum in ``s_k`` is ``exp(s_k) L_k = 1``: every scaled loss is driven to the same
    value. Weights ``w_k = exp(s_k) / T``. Put ``balancer.parameters()`` in the optimizer
    without weight decay.

    Args:
        num_tasks: number of tasks (``None``, the default: sized when bound to the tasks).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    parameter: ClassVar[str] = "log_scale"

    def __init__(self, num_tasks: int | None = None) -> None:
        super().__init__(num_tasks, 0.0)

    def loss_weights(self, losses: Tensor) -> Tensor:
        return (torch.exp(self.values()) / losses.numel()).detach().to(losses.dtype)

    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        s = self.values().to(losses.dtype)
        return (torch.exp(s) * losses - s).sum() / losses.numel()
