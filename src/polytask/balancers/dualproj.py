"""DualProj: the mean gradient projected onto the dual cone."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import lower_bounded_min_norm


@register("dualproj")
class DualProj(GramianWeighting):
    """Dual projection (Quinton & Rey 2024, arXiv 2406.16232): the mean gradient
    ``(1/T) sum_t g_t`` projected onto the dual cone ``{d : J d >= 0}``, i.e. ``d = J^T v`` with
    ``v = argmin_{v >= 1/T} v^T G v``. Never conflicts with a task; equals the mean gradient
    when that already conflicts with none. No hyper-parameters.
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {
            "homogeneous",
            "mean_when_identical",
            "mean_without_conflict",
            "non_conflicting",
            "order_invariant",
            "strongly_stationary",
        }
    )

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        T = gramian.shape[0]
        return lower_bounded_min_norm(gramian, torch.full((T,), 1.0 / T, dtype=torch.float64))
