"""PE-LTR: Pareto-efficient weights with a lower bound per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers._options import check_per_task, per_task_values
from polytask.balancers._restrict import PerTask
from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import min_norm_simplex


@register("pe_ltr")
class PELTR(GramianWeighting):
    """Pareto-Efficient Learning to Rank (Lin et al., "A Pareto-Efficient Algorithm for
    Multiple Objective Optimization in E-Commerce Recommendation", RecSys 2019; reference
    text 04): the min-norm combination of task gradients with a floor ``c_t`` on each weight,

    ``min ||sum_t w_t g_t||^2``  s.t.  ``sum_t w_t = 1``, ``w_t >= c_t``  (``sum_t c_t <= 1``),

    so every task keeps a guaranteed share while the rest goes where it helps all tasks.
    The paper solves a relaxation and projects; here it is exact: with ``w = c + s v``,
    ``s = 1 - sum c``, ``v`` on the simplex, it is the min-norm point of the points
    ``J^T c + s g_t`` (the exact min-norm solver on the Gramian ``A G A^T``, ``A = 1 c^T + s I``).
    All floors 0 is MGDA.

    Args:
        lower_bounds: ``{task: floor}`` (tasks left out get 0) or a sequence in task order;
            ``None``: 0 for every task.
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {"homogeneous", "mean_when_identical", "non_conflicting"}
    )

    def __init__(self, lower_bounds: Mapping[str, float] | Sequence[float] | None = None) -> None:
        super().__init__()
        if lower_bounds is not None:
            values = (
                list(lower_bounds.values())
                if isinstance(lower_bounds, Mapping)
                else list(lower_bounds)
            )
            if any(v < 0 for v in values) or sum(values) > 1 + 1e-12:
                raise ValueError(f"lower bounds must be >= 0 and sum to at most 1, got {values}")
        self.lower_bounds = lower_bounds

    # lower_bounds may be a sequence in task order: sliced for a step with absent tasks.
    task_state: ClassVar[Mapping[str, PerTask]] = {"lower_bounds": PerTask()}

    def on_bind(self) -> None:
        if self.lower_bounds is not None:
            check_per_task(self.lower_bounds, self.task_names, "lower_bounds", complete=False)

    def floors(self) -> Tensor:
        """The floors ``c`` ``(T,)`` in task order (float64)."""
        if self.lower_bounds is None:
            return torch.zeros(self.num_tasks, dtype=torch.float64)
        return torch.tensor(
            per_task_values(self.lower_bounds, self.task_names), dtype=torch.float64
        )

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64)
        T = G.shape[0]
        c = self.floors() if self.num_tasks == T else torch.zeros(T, dtype=torch.float64)
        s = 1.0 - float(c.sum())
        A = c[None, :].expand(T, T) + s * torch.eye(T, dtype=torch.float64)
        v = min_norm_simplex(A @ G @ A.T)
        return (A.T @ v).to(gramian.device, gramian.dtype)
