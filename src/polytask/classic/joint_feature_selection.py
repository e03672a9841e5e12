"""Joint feature selection by the ``l2,1`` norm (Argyriou, Evgeniou & Pontil, "Convex
multi-task feature learning", 2008; Liu, Ji & Ye, "Multi-task feature learning via efficient
l2,1-norm minimization", UAI 2009; scikit-learn's ``MultiTaskLasso`` for one shared ``X``)."""

from __future__ import annotations

import numpy as np

from polytask.classic.norm_penalty import NormPenalizedMTL
from polytask.classic.solver import Array


def group_soft_threshold(V: Array, threshold: float) -> Array:
    """The proximal operator of ``threshold * sum_j ||V[:, j]||_2`` (one group per feature,
    across tasks; ``V`` is ``(T, d)``): each feature's column shrunk towards 0 by
    ``threshold`` in norm, and set to 0 when its norm is at most ``threshold``."""
    norms = np.linalg.norm(V, axis=0, keepdims=True)
    return V * np.maximum(0.0, 1.0 - threshold / np.maximum(norms, 1e-300))


class JointFeatureSelectionMTL(NormPenalizedMTL):
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

    shrink = staticmethod(group_soft_threshold)

    @staticmethod
    def norm(W: Array) -> float:
        """The penalised norm of ``W``."""
        return float(np.linalg.norm(W, axis=0).sum())
