"""Clustered multi-task learning, convex relaxation (Zhou, Chen & Ye, "Clustered multi-task
learning via alternating structure optimization", NIPS 2011; MALSAR's ``Least_CMTL`` and
``Logistic_CMTL``; Jacob, Bach & Vert 2008 for the cluster-variance penalty)."""

from __future__ import annotations

import warnings

import numpy as np

from polytask.classic.alternating import AlternatingStructurePenalty
from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array


def capped_eigenvalues(sigma: Array, eta: float, k: float) -> Array:
    """``gamma = argmin sum_i sigma_i^2 / (eta + gamma_i)`` over ``0 <= gamma_i <= 1``,
    ``sum_i gamma_i = k`` (``sigma >= 0``, ``k <= len(sigma)``). The KKT conditions give
    ``gamma_i = clip(tau sigma_i - eta, 0, 1)`` with ``tau`` set so the sum is ``k``; the
    sum grows with ``tau``, found by bisection. When fewer than ``k`` values are positive,
    those get 1 and the rest share what is left (the objective does not see them)."""
    positive = sigma > 1e-12 * max(float(sigma.max(initial=0.0)), 1e-300)
    if positive.sum() <= k:
        gamma = np.where(positive, 1.0, 0.0)
        rest = ~positive
        if rest.any():
            gamma[rest] = (k - positive.sum()) / rest.sum()
        return gamma
    low, high = 0.0, (1.0 + eta) / float(sigma[positive].min())
    for _ in range(200):
        tau = (low + high) / 2
        if np.clip(tau * sigma - eta, 0.0, 1.0).sum() < k:
            low = tau
        else:
            high = tau
    return np.clip(high * sigma - eta, 0.0, 1.0)


def cluster_structure_step(W: Array, eta: float, k: float) -> Array:
    """The relaxed cluster structure ``M`` ``(T, T)`` that minimises
    ``tr(W^T (eta I + M)^{-1} W)`` over ``{0 <= M <= I, tr(M) = k}`` for task weights ``W``
    ``(T, d)``: ``M = Q diag(gamma) Q^T`` with ``W W^T = Q diag(sigma^2) Q^T`` and
    ``gamma`` from :func:`capped_eigenvalues` (Zhou, Chen & Ye 2011: the minimiser shares
    ``W W^T``'s eigenvectors)."""
    values, Q = np.linalg.eigh(W @ W.T)
    gamma = capped_eigenvalues(np.sqrt(np.clip(values, 0.0, None)), eta, k)
    return (Q * gamma) @ Q.T


class ClusteredPenalty(AlternatingStructurePenalty):
    """Tasks in ``n_clusters`` groups whose weights are alike, the groups learned:

    ``min_{W, M} data term + alpha eta (1 + eta) tr(W^T (eta I + M)^{-1} W)``,
    ``eta = l2 / alpha``, over ``0 <= M <= I``, ``tr(M) = n_clusters``.

    For a hard clustering ``M = F F^T`` (``F`` ``(T, k)`` the normalised cluster indicators)
    the penalty is ``alpha (||W||^2 - tr(W^T M W)) + l2 ||W||^2``: ``alpha`` times the
    spread of the tasks around their cluster means, plus a ridge. Relaxing ``M`` to the
    convex set above makes the problem jointly convex (Zhou, Chen & Ye 2011). Solved by
    alternating the ``W`` step (accelerated gradient with ``M`` fixed) and the closed-form
    ``M`` step :func:`cluster_structure_step`
    (:class:`~polytask.classic.alternating.AlternatingStructurePenalty`).
    ``n_clusters = T`` forces ``M = I``: ridge with ``l2`` on each task alone.

    Args:
        alpha: strength of the cluster term (> 0; default 1.0).
        l2: ridge on every weight (> 0; default 0.1).
        n_clusters: the number of task clusters ``k`` (1 <= k <= T; default 2).
        rounds: at most this many alternations (default 50).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty` (``max_iter``
            per ``W`` step).

    Attributes:
        cluster_structure_: the learned relaxed ``M`` ``(T, T)``; its leading eigenvectors
            span the clusters' indicators.
        objective_: the objective after each round.
    """

    structure_attribute = "cluster_structure_"

    def __init__(
        self,
        alpha: float = 1.0,
        l2: float = 0.1,
        n_clusters: int = 2,
        rounds: int = 50,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.alpha = alpha
        self.l2 = l2
        self.n_clusters = n_clusters
        self.rounds = rounds
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _check_params(self) -> None:
        super()._check_params()
        if not (self.alpha > 0 and self.l2 > 0):
            raise ValueError(
                f"alpha and l2 must be > 0 (eta = l2 / alpha), got {self.alpha} and {self.l2}"
            )
        if not self.n_clusters >= 1:
            raise ValueError(f"n_clusters must be >= 1, got {self.n_clusters}")

    def _eta(self) -> float:
        return self.l2 / self.alpha

    def _clusters(self, T: int) -> int:
        """``n_clusters``, or ``T`` (with a warning) when the data have fewer tasks."""
        if self.n_clusters <= T:
            return self.n_clusters
        warnings.warn(
            f"n_clusters={self.n_clusters} but the data have {T} task(s): each task is its own "
            "cluster (M = I, a ridge on each task alone); lower n_clusters",
            UserWarning,
            stacklevel=4,
        )
        return T

    def _initial_structure(self, T: int) -> Array:
        return np.eye(T) * self._clusters(T) / T

    def _structure_step(self, W: Array) -> Array:
        return cluster_structure_step(W, self._eta(), min(self.n_clusters, W.shape[0]))

    def _penalty_matrix(self, structure: Array) -> Array:
        eta = self._eta()
        scale = self.alpha * eta * (1 + eta)
        return scale * np.linalg.inv(eta * np.eye(len(structure)) + structure)


class ClusteredMTL(ClusteredPenalty, ClassicMTLRegressor):
    """Clustered MTL for regression: :class:`ClusteredPenalty` with each task's mean squared
    error."""


class ClusteredMTLClassifier(ClusteredPenalty, ClassicMTLClassifier):
    """Clustered MTL for logistic regression: :class:`ClusteredPenalty` with each task's
    mean logistic loss."""
