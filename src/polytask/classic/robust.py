"""Robust multi-task learning: a low-rank structure shared by most tasks plus a few
outlier tasks (Chen, Zhou & Ye, "Integrating low-rank and group-sparse structures for
robust multi-task learning", KDD 2011; MALSAR's ``Least_RMTL``)."""

from __future__ import annotations

import numpy as np

from polytask.classic.base import ClassicMTLEstimator
from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.joint_feature_selection import group_soft_threshold
from polytask.classic.losses import TaskRows
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array
from polytask.classic.trace_norm import singular_value_threshold


class RobustPenalty(ClassicMTLEstimator):
    """``W = L + S`` with ``L`` low rank and ``S`` non-zero on a few tasks only:

    ``min_{L, S} data term(L + S) + alpha ||L||_* + beta sum_t ||S[t]||_2``

    (``(T, d)`` matrices; ``S``'s penalty is a group norm over tasks, MALSAR's
    column-wise ``||S||_{1,2}`` with its ``d x T`` layout). Tasks whose ``S`` row is
    non-zero are the outliers: they leave the shared subspace. Solved by accelerated
    proximal gradient on ``(L, S)`` jointly: singular value thresholding for ``L``, group
    soft-thresholding of rows for ``S``; the data term's Lipschitz constant doubles
    (``L + S`` has squared operator norm 2).

    Args:
        alpha: strength of the trace norm on ``L`` (>= 0; default 1.0).
        beta: strength of the task-group norm on ``S`` (>= 0; default 1.0).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.

    Attributes:
        low_rank_, outliers_: ``L`` and ``S`` ``(T, d)``; ``coef_ = L + S``.
        outlier_tasks_: the tasks whose ``S`` row is not zero.
    """

    _combine_norm2 = 2.0

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _path_range(self, rows: TaskRows) -> tuple[float, float, bool]:
        """From the smallest ``alpha`` at which ``L = 0`` is optimal when ``S = 0`` too (the
        gradient's spectral norm; with ``beta`` small the outlier part may still fit, so
        not exact) down to 1e-4 times it."""
        top = float(np.linalg.norm(self._gradient_at_zero(rows), 2))
        return top, 1e-4 * top, False

    def _parameter_width(self, d: int) -> int:
        return 2 * d

    def _combine(self, P: Array) -> Array:
        d = P.shape[1] // 2
        return P[:, :d] + P[:, d:]

    def _combine_adjoint(self, G: Array) -> Array:
        return np.hstack([G, G])

    def _prox(self, P: Array, step: float) -> Array:
        d = P.shape[1] // 2
        low = singular_value_threshold(P[:, :d], step * self.alpha)
        outliers = group_soft_threshold(P[:, d:].T, step * self.beta).T
        return np.hstack([low, outliers])

    def _nonsmooth_penalty(self, P: Array) -> float:
        d = P.shape[1] // 2
        trace = float(np.linalg.svd(P[:, :d], compute_uv=False).sum())
        return self.alpha * trace + self.beta * float(np.linalg.norm(P[:, d:], axis=1).sum())

    def _fitted_parameters(self, P: Array) -> None:
        d = P.shape[1] // 2
        self.low_rank_, self.outliers_ = P[:, :d], P[:, d:]
        self.outlier_tasks_ = self.tasks_[np.linalg.norm(self.outliers_, axis=1) > 0]


class RobustMTL(RobustPenalty, ClassicMTLRegressor):
    """Robust MTL for regression: :class:`RobustPenalty` with each task's mean squared
    error."""


class RobustMTLClassifier(RobustPenalty, ClassicMTLClassifier):
    """Robust MTL for logistic regression: :class:`RobustPenalty` with each task's mean
    logistic loss."""
