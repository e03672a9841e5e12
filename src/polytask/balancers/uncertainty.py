"""Uncertainty weighting (homoscedastic task uncertainty)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers._learnt import LearntPerTask
from polytask.balancers.registry import register


@register("uncertainty")
class UncertaintyWeighting(LearntPerTask):
    """Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018. With learnable ``s_k = log sigma_k^2``:

    ``L = (1/T) sum_k [ exp(-s_k) L_k / 2 + s_k / 2 ]``  (the paper's sum divided by ``T``).

    The weights ``w_k = exp(-s_k) / (2T)`` are learnt with the model: put
    ``balancer.parameters()`` in the optimizer without weight decay
    (:func:`polytask.training.build_optimizer` does). At the optimum of ``s_k``,
    ``exp(s_k) = L_k``, so the method behaves like real-time loss normalisation with a lag.

    Args:
        num_tasks: number of tasks (``None``, the default: sized when bound to the tasks).
        init_log_variance: initial ``s_k`` (0: ``sigma = 1``).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    parameter: ClassVar[str] = "log_variance"

    def __init__(self, num_tasks: int | None = None, init_log_variance: float = 0.0) -> None:
        super().__init__(num_tasks, init_log_variance)

    def loss_weights(self, losses: Tensor) -> Tensor:
        return (torch.exp(-self.values()) / (2 * losses.numel())).detach().to(losses.dtype)

    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        s = self.values().to(losses.dtype)
        return (torch.exp(-s) * losses / 2 + s / 2).sum() / losses.numel()
