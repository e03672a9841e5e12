"""IMTL-L: learnable loss scales that make the scaled losses equal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("imtl_l")
class IMTLL(LossWeighting):
    """The loss-balance part of IMTL (Liu et al., "Towards Impartial Multi-task Learning",
    ICLR 2021). With learnable ``s_k``:

    ``L = (1/T) sum_k [ exp(s_k) L_k - s_k ]``  (the paper's sum divided by ``T``),

    whose optimum in ``s_k`` is ``exp(s_k) L_k = 1``: every scaled loss is driven to the same
    value. Weights ``w_k = exp(s_k) / T``. Put ``balancer.parameters()`` in the optimizer
    without weight decay.

    Args:
        num_tasks: number of tasks.
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.log_scale = nn.Parameter(torch.zeros(num_tasks))

    task_state: ClassVar[Mapping[str, PerTask]] = {"log_scale": PerTask()}

    @classmethod
    def example_options(cls, num_tasks: int) -> dict[str, Any]:
        return {"num_tasks": num_tasks}

    def on_bind(self) -> None:
        if self.num_tasks != self.log_scale.numel():
            raise ValueError(
                f"imtl_l was built for {self.log_scale.numel()} tasks, got {self.num_tasks}"
            )

    def loss_weights(self, losses: Tensor) -> Tensor:
        return (torch.exp(self.log_scale) / losses.numel()).detach().to(losses.dtype)

    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        s = self.log_scale.to(losses.dtype)
        return (torch.exp(s) * losses - s).sum() / losses.numel()
