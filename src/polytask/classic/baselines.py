"""The two baselines every multi-task method is measured against: each task alone, and one
model for all tasks."""

from __future__ import annotations

import numpy as np

from polytask.classic.base import ClassicMTLRegressor, ridge
from polytask.classic.solver import Array


class IndependentMTL(ClassicMTLRegressor):
    """Each task its own ridge regression, nothing shared:
    ``min_W sum_t (1/(2 m_t)) ||y_t - X_t w_t - b_t||^2 + l2 ||W||_F^2``.

    Args:
        l2: ridge on every weight (>= 0; default 0: least squares).
        task_column, fit_intercept, max_iter, tol: as :class:`~polytask.classic.MeanRegularizedMTL`.
    """

    def __init__(
        self,
        l2: float = 0.0,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.l2 = l2
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _smooth_penalty(self, W: Array) -> tuple[float, Array]:
        return ridge(W, self.l2)

    def _penalty_lipschitz(self) -> float:
        return 2 * self.l2


class PooledMTL(IndependentMTL):
    """One weight vector for every task (each keeping its own intercept when
    ``fit_intercept``): the same objective with ``w_t = w`` for all ``t``, each task's
    squared error still averaged over its own rows. Same options as
    :class:`IndependentMTL` (``l2`` is the ridge on the shared weights)."""

    def _prox(self, V: Array, step: float) -> Array:
        # The projection onto {W: all rows equal}: projected gradient on the data term
        # (summed over tasks) solves the pooled problem.
        return np.broadcast_to(V.mean(axis=0, keepdims=True), V.shape).copy()
