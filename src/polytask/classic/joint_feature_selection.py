"""Joint feature selection by the ``l2,1`` norm (Argyriou, Evgeniou & Pontil, "Convex
multi-task feature learning", 2008; Liu, Ji & Ye, "Multi-task feature learning via efficient
l2,1-norm minimization", UAI 2009; scikit-learn's ``MultiTaskLasso`` for one shared ``X``)."""

from __future__ import annotations

import numpy as np

from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.norm_penalty import NormPenalty
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array


def group_soft_threshold(V: Array, threshold: float) -> Array:
    """The proximal operator of ``threshold * sum_j ||V[:, j]||_2`` (one group per feature,
    across tasks; ``V`` is ``(T, d)``): each feature's column shrunk towards 0 by
    ``threshold`` in norm, and set to 0 when its norm is at most ``threshold``."""
    norms = np.linalg.norm(V, axis=0, keepdims=True)
    return V * np.maximum(0.0, 1.0 - threshold / np.maximum(norms, 1e-300))


class JointFeatureSelectionPenalty(NormPenalty):
    """The features all tasks share:

    ``min_W data term + alpha sum_j ||W[:, j]||_2``

    (``W`` is ``(T, d)``; the penalty is the ``l2,1`` norm over features), so a feature is
    used by every task or by none. With one ``X`` shared by all tasks this is exactly
    scikit-learn's ``MultiTaskLasso(alpha)`` (regression); here tasks may have their own
    rows and missing labels. Solved by accelerated proximal gradient with group soft-thresholding.

    Args:
        alpha: strength of the ``l2,1`` penalty (>= 0; default 1.0).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.
    """

    shrink = staticmethod(group_soft_threshold)

    @staticmethod
    def norm(W: Array) -> float:
        """The penalised norm of ``W``."""
        return float(np.linalg.norm(W, axis=0).sum())

    @staticmethod
    def dual_norm(G: Array) -> float:
        """The largest feature-column norm (the ``l2,inf`` norm)."""
        return float(np.linalg.norm(G, axis=0).max())


class JointFeatureSelectionMTL(JointFeatureSelectionPenalty, ClassicMTLRegressor):
    """Joint feature selection for regression: :class:`JointFeatureSelectionPenalty` with
    each task's mean squared error; ``MultiTaskLasso(alpha)`` on one shared ``X``."""


class JointFeatureSelectionMTLClassifier(JointFeatureSelectionPenalty, ClassicMTLClassifier):
    """Joint feature selection for logistic regression (Liu, Ji & Ye 2009's
    ``Logistic_L21``): :class:`JointFeatureSelectionPenalty` with each task's mean logistic
    loss."""
