"""EPO: exact Pareto-optimal search along a preference ray."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.simplex_lp import simplex_max
from polytask.balancers.solvers import psd_part, single_threaded_blas


@single_threaded_blas
def _linprog(c: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray) -> np.ndarray | None:
    """``max c^T a`` over the simplex subject to ``A_ub a <= b_ub``, by the dense simplex
    method of :mod:`polytask.balancers.simplex_lp` (0.1 ms at T = 8 where HiGHS through
    scipy takes 1.7 ms; checked against HiGHS in the tests); ``None`` if infeasible."""
    return simplex_max(c, A_ub, b_ub)


@register("epo")
class EPO(GramianWeighting):
    """Exact Pareto Optimal search (Mahapatra & Rajan, "Multi-Task Learning with User
    Preferences: Gradient Descent with Controlled Ascent in Pareto Optimization", ICML 2020).

    Seeks the Pareto-optimal point whose losses lie on the preference ray: ``r_t L_t`` all
    equal. With ``rl = r * L``, ``lhat = rl / sum(rl)`` and the non-uniformity
    ``mu = sum_t lhat_t log(T lhat_t)`` (KL from uniform), the adjustment
    ``a = r (log(T lhat) - mu)`` and ``Ca = G a``:

    - balance mode (``mu > eps``): ``max_{w in simplex} w^T Ca`` s.t. ``(G w)_j >= (Ca)_j`` for
      ``j`` with ``Ca_j <= 0`` and ``(G w)_j >= 0`` for the tasks with the largest ``rl``
      (controlled ascent towards the ray);
    - descent mode: ``max 1^T G w`` s.t. ``G w >= 0`` and ``w^T Ca >= min(max Ca, 0)``.

    Both are linear programmes over ``T`` weights, solved exactly by a dense two-phase
    simplex method (:mod:`polytask.balancers.simplex_lp`). If the
    balance programme is infeasible, a warning is given and the relaxed descent programme
    (``G w >= 0``, always feasible: MGDA's point satisfies it) is used. The weights sum to 1.

    Args:
        preference: the ray ``r`` (positive, length ``T``); ``None``: all ones.
        eps: non-uniformity below which the losses count as on the ray (1e-4).
    """

    def __init__(self, preference: Sequence[float] | None = None, eps: float = 1e-4) -> None:
        super().__init__()
        if preference is not None and any(p <= 0 for p in preference):
            raise ValueError(f"preference entries must be > 0, got {list(preference)}")
        self.preference = list(map(float, preference)) if preference is not None else None
        self.eps = eps
        self.last_mode = ""

    task_state: ClassVar[Mapping[str, PerTask]] = {"preference": PerTask()}

    def on_bind(self) -> None:
        if self.preference is not None and len(self.preference) != self.num_tasks:
            raise ValueError(
                f"preference has {len(self.preference)} entries for {self.num_tasks} tasks"
            )

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64).numpy()
        T = G.shape[0]
        # The positive semi-definite part: a float32 Gramian is indefinite by its rounding,
        # and then even the relaxed programme (G w >= 0) can be infeasible.
        G = psd_part(G / max(float(np.abs(np.diag(G)).max()), 1e-30))
        r = np.ones(T) if self.preference is None else np.asarray(self.preference)
        rl = r * np.clip(losses.detach().to("cpu", torch.float64).numpy(), 1e-30, None)
        lhat = rl / rl.sum()
        mu = float(np.sum(lhat * np.log(lhat * T)))
        a = r * (np.log(lhat * T) - mu)
        Ca = G @ a
        weights = None
        if mu > self.eps:
            active = Ca > 0
            rows, bounds = [], []
            for j in range(T):
                if not active[j]:  # (G w)_j >= Ca_j
                    rows.append(-G[j])
                    bounds.append(-Ca[j])
            if active.any():
                for top in np.flatnonzero(rl == rl.max()):  # (G w)_top >= 0
                    rows.append(-G[top])
                    bounds.append(0.0)
            weights = _linprog(Ca, np.array(rows), np.array(bounds))
            self.last_mode = "balance"
            if weights is None:
                warnings.warn(
                    "EPO's balance programme is infeasible at this step; using the relaxed "
                    "descent programme (G w >= 0) instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if weights is None:
            rows = list(-G)
            bounds = [0.0] * T
            if mu <= self.eps:
                rows.append(-Ca)
                bounds.append(-min(float(Ca.max()), 0.0))
            weights = _linprog(G.sum(0), np.array(rows), np.array(bounds))
            if weights is None:  # numerically infeasible: drop the restriction on Ca
                weights = _linprog(G.sum(0), -G, np.zeros(T))
            self.last_mode = "descent"
        if weights is None:
            raise RuntimeError("EPO's linear programmes are infeasible; check the Gramian")
        return torch.from_numpy(np.asarray(weights, dtype=np.float64)).to(
            gramian.device, gramian.dtype
        )
