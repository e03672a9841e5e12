"""Joint feature selection by the ``l2,1`` norm (Argyriou, Evgeniou & Pontil, "Convex
multi-task feature learning", 2008; Liu, Ji & Ye, "Multi-task feature learning via efficient
l2,1-norm minimization", UAI 2009; scikit-learn's ``MultiTaskLasso`` for one shared ``X``)."""

from __future__ import annotations

import numpy as np

from polytask.classic.base import ClassicMTLRegressor
from polytask.classic.solver import Array


def group_soft_threshold(V: Array, threshold: float) -> Array:
    """The proximal operator of ``threshold * sum_j ||V[:, j]||_2`` (one group per feature,
    across tasks; ``V`` is ``(T, d)``): each feature's column shrunk towards 0 by
    ``threshold`` in norm, and set to 0 when its norm is at most ``threshold``."""
    norms = np.linalg.norm(V, axis=0, keepdims=True)
    return V * np.maximum(0.0, 1.0 - threshold / np.maximum(norms, 1e-300))


class JointFeatureSelectionMTL(ClassicMTLRegressor):
    """The features all tasks share:

    ``min_W sum_t (1/(2 m_t)) ||y_t - X_t w_t - b_t||^2 + alpha sum_j ||W[:, j]||_2``

    (``W`` is ``(T, d)``; the penalty is the ``l2,1`` norm over features), so a feature is
    used by every task or by none. With one ``X`` shared by all tasks this is exactly
    scikit-learn's ``MultiTaskLasso(alpha)``; here tasks may have their own rows and missing
    labels. Solved by accelerated proximal gradient with group soft-thresholding.

    Args:
        alpha: strength of the ``l2,1`` penalty (>= 0; default 1.0).
        task_column, fit_intercept, max_iter, tol: as :class:`~polytask.classic.MeanRegularizedMTL`.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.alpha = alpha
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _prox(self, V: Array, step: float) -> Array:
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        return group_soft_threshold(V, step * self.alpha)

    def _nonsmooth_penalty(self, W: Array) -> float:
        return self.alpha * float(np.linalg.norm(W, axis=0).sum())
