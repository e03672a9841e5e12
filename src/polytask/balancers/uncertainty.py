"""Uncertainty weighting (homoscedastic task uncertainty)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018. With learnable ``s_k = log sigma_k^2``:

    ``L = (1/T) sum_k [ exp(-s_k) L_k / 2 + s_k / 2 ]``  (the paper's sum divided by ``T``).

    The weights ``w_k = exp(-s_k) / (2T)`` are learnt with the model: put
    ``balancer.parameters()`` in the optimizer without weight decay
    (:func:`polytask.training.build_optimizer` does). At the optimum of ``s_k``,
    ``exp(s_k) = L_k``, so the method behaves like real-time loss normalisation with a lag.

    Args:
        num_tasks: number of tasks (the parameters exist before the first step).
        init_log_variance: initial ``s_k`` (0: ``sigma = 1``).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    def __init__(self, num_tasks: int, init_log_variance: float = 0.0) -> None:
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.log_variance = nn.Parameter(torch.full((num_tasks,), float(init_log_variance)))

    task_state: ClassVar[Mapping[str, PerTask]] = {"log_variance": PerTask()}

    @classmethod
    def example_options(cls, num_tasks: int) -> dict[str, Any]:
        return {"num_tasks": num_tasks}

    def on_bind(self) -> None:
        if self.num_tasks != self.log_variance.numel():
            raise ValueError(
                f"uncertainty was built for {self.log_variance.numel()} tasks, got {self.num_tasks}"
            )

    def loss_weights(self, losses: Tensor) -> Tensor:
        return (torch.exp(-self.log_variance) / (2 * losses.numel())).detach().to(losses.dtype)

    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        s = self.log_variance.to(losses.dtype)
        return (torch.exp(-s) * losses / 2 + s / 2).sum() / losses.numel()
