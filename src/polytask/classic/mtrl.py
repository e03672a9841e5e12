"""Multi-task relationship learning (Zhang & Yeung, "A convex formulation for learning task
relationships in multi-task learning", UAI 2010): the task covariance is learned with the
weights."""

from __future__ import annotations

import numpy as np

from polytask.classic.alternating import AlternatingStructurePenalty
from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array
from polytask.classic.task_covariance import omega_step


class RelationshipPenalty(AlternatingStructurePenalty):
    """``min_{W, Omega} data term + (l2 / 2) ||W||_F^2 + (alpha / 2) tr(W^T Omega^{-1} W)``,
    ``Omega >= 0``, ``tr(Omega) = 1``

    (``W`` is ``(T, d)``, ``Omega`` the ``T x T`` task covariance: positive entries for tasks
    that help each other, negative for tasks that pull apart). Jointly convex; solved by
    alternating the ``W`` step (accelerated gradient with ``Omega`` fixed) and the closed-form
    ``Omega`` step (:func:`~polytask.classic.task_covariance.omega_step`), as the paper does
    (:class:`~polytask.classic.alternating.AlternatingStructurePenalty`).

    Args:
        alpha: strength of the task-relationship term (> 0; default 1.0).
        l2: ridge on every weight (>= 0; default 0.01).
        rounds: at most this many alternations (default 50).
        eps: keeps ``Omega`` invertible (default 1e-8).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty` (``max_iter``
            per ``W`` step).

    Attributes:
        omega_: the learned task covariance ``(T, T)``.
        objective_: the objective after each round.
    """

    structure_attribute = "omega_"

    def __init__(
        self,
        alpha: float = 1.0,
        l2: float = 0.01,
        rounds: int = 50,
        eps: float = 1e-8,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.alpha = alpha
        self.l2 = l2
        self.rounds = rounds
        self.eps = eps
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _check_params(self) -> None:
        super()._check_params()
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0 (Omega^-1 weighs the weights), got {self.alpha}")

    def _initial_structure(self, T: int) -> Array:
        return np.eye(T) / T

    def _structure_step(self, W: Array) -> Array:
        return omega_step(W, self.eps)

    def _penalty_matrix(self, structure: Array) -> Array:
        # (l2 / 2) ||W||^2 + (alpha / 2) tr(W^T Omega^-1 W) = tr(W^T K W)
        T = len(structure)
        return 0.5 * (self.alpha * np.linalg.inv(structure) + self.l2 * np.eye(T))


class RelationshipMTL(RelationshipPenalty, ClassicMTLRegressor):
    """MTRL for regression: :class:`RelationshipPenalty` with each task's mean squared
    error."""


class RelationshipMTLClassifier(RelationshipPenalty, ClassicMTLClassifier):
    """MTRL for logistic regression: :class:`RelationshipPenalty` with each task's mean
    logistic loss."""
