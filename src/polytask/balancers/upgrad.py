"""UPGrad: average of the task gradients projected onto the dual cone."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import lower_bounded_min_norm_many


@register("upgrad")
class UPGrad(GramianWeighting):
    """Unconflicting Projection of Gradients (Quinton & Rey, "Jacobian Descent for
    Multi-Objective Optimization", arXiv 2406.16232, 2024).

    Each task gradient ``g_i`` is projected onto the dual cone ``{d : J d >= 0}`` of the
    task gradients; the update is the mean of the projections. In weights: the projection of
    ``g_i`` is ``J^T v_i`` with ``v_i = argmin_{v >= e_i} v^T G v``, and ``w = (1/T) sum_i v_i``.
    The update never conflicts with any task (``<d, g_t> >= 0``), equals the mean gradient
    when no gradients conflict, and is linear under scaling of the Jacobian. With two tasks
    the projection of ``g_1`` is ``g_1 - (g_1.g_2 / |g_2|^2) g_2`` when they conflict, PCGrad's
    projection, so UPGrad and PCGrad make the same update (tested).

    No hyper-parameters (the projections are solved exactly by non-negative least squares,
    one factorisation of the Gramian shared by the ``T`` problems).
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {
            "homogeneous",
            "linear_under_scaling",
            "mean_when_identical",
            "mean_without_conflict",
            "non_conflicting",
            "order_invariant",
            "strongly_stationary",
        }
    )

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        T = gramian.shape[0]
        projections = lower_bounded_min_norm_many(gramian, torch.eye(T, dtype=torch.float64))
        return projections.mean(0)
