"""Multi-task relationship learning (Zhang & Yeung, "A convex formulation for learning task
relationships in multi-task learning", UAI 2010): the task covariance is learned with the
weights."""

from __future__ import annotations

import numpy as np

from polytask.classic.base import ClassicMTLEstimator, ridge
from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array
from polytask.classic.task_covariance import omega_step


def squared_l1_prox(v: Array, weight: float) -> Array:
    """``argmin_x (weight / 2) (sum_i x_i)^2 + (1/2) ||x - v||^2`` over ``x >= 0`` for
    ``v >= 0``: ``x_i = max(v_i - weight * S, 0)`` with ``S = sum x``; with the ``k``
    largest ``v`` active, ``S = (sum of those) / (1 + k weight)``, and ``k`` is the largest
    count whose smallest active value still exceeds ``weight * S``."""
    order = np.sort(v)[::-1]
    k = np.arange(1, len(v) + 1)
    totals = np.cumsum(order) / (1 + k * weight)
    active = order > weight * totals
    if not active.any():
        return np.zeros_like(v)
    total = totals[np.flatnonzero(active)[-1]]
    return np.maximum(v - weight * total, 0.0)


def squared_trace_norm_prox(V: Array, weight: float) -> Array:
    """The proximal operator of ``(weight / 2) ||V||_*^2``: ``V``'s singular values mapped
    by :func:`squared_l1_prox` (a spectral function's prox acts on the singular values),
    its singular vectors kept."""
    U, s, Vt = np.linalg.svd(V, full_matrices=False)
    return (U * squared_l1_prox(s, weight)) @ Vt


class RelationshipPenalty(ClassicMTLEstimator):
    """``min_{W, Omega} data term + (l2 / 2) ||W||_F^2 + (alpha / 2) tr(W^T Omega^{-1} W)``,
    ``Omega >= 0``, ``tr(Omega) = 1``

    (``W`` is ``(T, d)``, ``Omega`` the ``T x T`` task covariance: positive entries for tasks
    that help each other, negative for tasks that pull apart). Zhang & Yeung alternate a
    ``W`` step and the closed-form ``Omega`` step
    (:func:`~polytask.classic.task_covariance.omega_step`, ``Omega = (W W^T)^{1/2} /
    tr(...)``). Putting that step into the objective eliminates ``Omega`` exactly:
    ``min_Omega tr(W^T Omega^{-1} W) = (tr (W W^T)^{1/2})^2 = ||W||_*^2``, so the problem is
    ``min_W data term + (l2 / 2) ||W||_F^2 + (alpha / 2) ||W||_*^2``, solved here by
    accelerated proximal gradient with the squared trace norm's exact proximal operator
    (:func:`squared_trace_norm_prox`): no alternation, whose convergence is slow when
    ``alpha`` is small (measured on School: 50 rounds still 0.05% above the optimum).
    ``omega_`` is then the ``Omega`` step at the solution.

    Args:
        alpha: strength of the task-relationship term (>= 0; default 1.0).
        l2: ridge on every weight (>= 0; default 0.01).
        eps: added inside ``omega_``'s square root so that it stays invertible when the
            weights have lower rank than ``T`` (default 1e-8); the fit does not need it.
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.

    Attributes:
        omega_: the learned task covariance ``(T, T)``.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        l2: float = 0.01,
        eps: float = 1e-8,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.alpha = alpha
        self.l2 = l2
        self.eps = eps
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _smooth_penalty(self, P: Array) -> tuple[float, Array]:
        return ridge(P, self.l2 / 2)

    def _penalty_lipschitz(self) -> float:
        return self.l2

    def _prox(self, P: Array, step: float) -> Array:
        return squared_trace_norm_prox(P, step * self.alpha)

    def _nonsmooth_penalty(self, P: Array) -> float:
        return 0.5 * self.alpha * float(np.linalg.svd(P, compute_uv=False).sum()) ** 2

    def _fitted_parameters(self, P: Array) -> None:
        self.omega_ = omega_step(P, self.eps)


class RelationshipMTL(RelationshipPenalty, ClassicMTLRegressor):
    """MTRL for regression: :class:`RelationshipPenalty` with each task's mean squared
    error."""


class RelationshipMTLClassifier(RelationshipPenalty, ClassicMTLClassifier):
    """MTRL for logistic regression: :class:`RelationshipPenalty` with each task's mean
    logistic loss."""
