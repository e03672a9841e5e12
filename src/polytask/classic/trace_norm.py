"""Low-rank multi-task learning by the trace norm (Ji & Ye, "An accelerated gradient method
for trace norm minimization", ICML 2009; Argyriou et al. 2008)."""

from __future__ import annotations

import numpy as np

from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.norm_penalty import NormPenalty
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array


def singular_value_threshold(V: Array, threshold: float) -> Array:
    """The proximal operator of ``threshold * ||V||_*``: ``V``'s singular values shrunk by
    ``threshold`` (those below it set to 0), its singular vectors kept."""
    U, s, Vt = np.linalg.svd(V, full_matrices=False)
    return (U * np.maximum(s - threshold, 0.0)) @ Vt


class TraceNormPenalty(NormPenalty):
    """Task weights in a low-dimensional subspace:

    ``min_W data term + alpha ||W||_*``

    (``||W||_*``: the sum of ``W``'s singular values, the convex envelope of its rank), so
    the tasks share a few directions in feature space. Solved by accelerated proximal
    gradient with singular value thresholding, as Ji & Ye (2009).

    Args:
        alpha: strength of the trace-norm penalty (>= 0; default 1.0).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.
    """

    shrink = staticmethod(singular_value_threshold)

    @staticmethod
    def norm(W: Array) -> float:
        """The penalised norm of ``W``."""
        return float(np.linalg.svd(W, compute_uv=False).sum())

    @staticmethod
    def dual_norm(G: Array) -> float:
        """The spectral norm (the largest singular value)."""
        return float(np.linalg.norm(G, 2))


class TraceNormMTL(TraceNormPenalty, ClassicMTLRegressor):
    """Low-rank regression: :class:`TraceNormPenalty` with each task's mean squared
    error."""


class TraceNormMTLClassifier(TraceNormPenalty, ClassicMTLClassifier):
    """Low-rank logistic regression: :class:`TraceNormPenalty` with each task's mean
    logistic loss."""
