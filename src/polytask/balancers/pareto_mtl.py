"""Pareto MTL: a Pareto-optimal solution in the sub-region of a preference vector."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import min_norm_simplex


def circle_preferences(count: int) -> list[list[float]]:
    """``count`` unit preference vectors for two tasks, evenly spaced on the quarter circle
    (the paper's setting)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    if count == 1:
        return [[math.sqrt(0.5), math.sqrt(0.5)]]
    angles = [i * (math.pi / 2) / (count - 1) for i in range(count)]
    return [[math.cos(a), math.sin(a)] for a in angles]


@register("pareto_mtl")
class ParetoMTL(GramianWeighting):
    """Pareto Multi-Task Learning (Lin, Zhen, Li, Zhang & Kwong, NeurIPS 2019).

    Preference vectors ``u_1 .. u_K`` split the loss space into sub-regions; a run with
    ``index = k`` looks for a Pareto-optimal point in the region of ``u_k``, whose constraints
    are ``G_j = (u_j - u_k)^T L / ||L|| <= 0`` for ``j != k`` (normalised vectors). The update
    is MGDA over the task gradients and the gradients of the active constraints
    (``G_j >= -eps``), ``grad G_j ~ sum_t (u_j - u_k)_t g_t``; on the Gramian this is the
    min-norm over ``A G A^T`` with ``A`` the stack of ``I`` and the active rows of
    ``U - u_k``, and the task weights are ``A^T lambda`` (they can be negative).
    During the first ``init_steps`` steps, while the point is outside its region, only the
    violated constraints are descended (the paper's initialisation phase).

    Trace a Pareto front by training one model per ``index``.

    Args:
        preferences: ``K x T`` preference vectors (positive); ``None``: for two tasks, 5
            vectors evenly spread on the quarter circle.
        index: which preference vector this run follows (0).
        init_steps: steps of the initialisation phase (100).
        eps: a constraint counts as active when ``G_j >= -eps`` (0.0 as in the paper's code).
    """

    def __init__(
        self,
        preferences: Sequence[Sequence[float]] | None = None,
        index: int = 0,
        init_steps: int = 100,
        eps: float = 0.0,
    ) -> None:
        super().__init__()
        self.preferences = [list(map(float, p)) for p in preferences] if preferences else None
        self.index = index
        self.init_steps = init_steps
        self.eps = eps
        self.steps = 0

    task_state: ClassVar[Mapping[str, PerTask]] = {"preferences": PerTask(axes=(1,))}

    @classmethod
    def example_options(cls, num_tasks: int) -> dict[str, Any]:
        if num_tasks == 2:
            return {}
        return {"preferences": [[1.0 + (i == k) for i in range(num_tasks)] for k in range(3)]}

    def on_bind(self) -> None:
        if self.preferences is None:
            if self.num_tasks != 2:
                raise ValueError(
                    "pareto_mtl needs preferences=[[...], ...] (K x T) for more than 2 tasks"
                )
            self.preferences = circle_preferences(5)
        if any(len(p) != self.num_tasks for p in self.preferences):
            raise ValueError(f"every preference vector needs {self.num_tasks} entries")
        if not 0 <= self.index < len(self.preferences):
            raise ValueError(f"index {self.index} out of range for {len(self.preferences)} vectors")

    def constraint_rows(self) -> Tensor:
        """``(K-1, T)``: ``u_j - u_k`` for ``j != k`` (unit vectors)."""
        assert self.preferences is not None
        U = torch.tensor(self.preferences, dtype=torch.float64)
        U = U / U.norm(dim=1, keepdim=True)
        rows = U - U[self.index]
        keep = torch.arange(len(U)) != self.index
        return rows[keep]

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64)
        T = G.shape[0]
        L = losses.detach().to("cpu", torch.float64)
        W = self.constraint_rows()
        values = W @ (L / L.norm().clamp_min(1e-30))
        self.steps += 1
        if self.steps <= self.init_steps and bool((values > 0).any()):
            A = W[values > 0]
        else:
            A = torch.cat([torch.eye(T, dtype=torch.float64), W[values >= -self.eps]])
        lam = min_norm_simplex(A @ G @ A.T)
        return (A.T @ lam).to(gramian.device, gramian.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "steps": self.steps}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.steps = int(state["steps"])
