"""The two baselines every multi-task method is measured against: each task alone, and one
model for all tasks."""

from __future__ import annotations

import numpy as np

from polytask.classic.base import ClassicMTLEstimator, ridge
from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array


class IndependentPenalty(ClassicMTLEstimator):
    """Each task its own ridge model, nothing shared: ``min_W data term + l2 ||W||_F^2``.

    Args:
        l2: ridge on every weight (>= 0; default 0: least squares, or plain logistic
            regression, which diverges on a task whose classes are separable).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.
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

    def _smooth_penalty(self, P: Array) -> tuple[float, Array]:
        return ridge(P, self.l2)

    def _penalty_lipschitz(self) -> float:
        return 2 * self.l2


class PooledPenalty(IndependentPenalty):
    """One weight vector for every task (each keeping its own intercept when
    ``fit_intercept``): the same objective with ``w_t = w`` for all ``t``, each task's loss
    still averaged over its own rows. Same options as :class:`IndependentPenalty`; the
    ridge is still ``l2 ||W||_F^2``, which on ``T`` equal rows is ``T l2 ||w||^2``."""

    def _prox(self, P: Array, step: float) -> Array:
        # The projection onto {W: all rows equal}: projected gradient on the data term
        # (summed over tasks) solves the pooled problem.
        return np.broadcast_to(P.mean(axis=0, keepdims=True), P.shape).copy()


class IndependentMTL(IndependentPenalty, ClassicMTLRegressor):
    """Each task alone, by ridge regression (:class:`IndependentPenalty`)."""


class IndependentMTLClassifier(IndependentPenalty, ClassicMTLClassifier):
    """Each task alone, by ridge-penalised logistic regression (:class:`IndependentPenalty`)."""


class PooledMTL(PooledPenalty, ClassicMTLRegressor):
    """One ridge regression for all tasks (:class:`PooledPenalty`)."""


class PooledMTLClassifier(PooledPenalty, ClassicMTLClassifier):
    """One logistic regression for all tasks (:class:`PooledPenalty`)."""
