"""Penalties with a task-structure matrix learned with the weights (clustered MTL's
cluster structure): alternate the ``W`` step with the structure fixed (a
smooth problem for the accelerated solver) and the structure's closed-form step with ``W``
fixed. Both objectives are jointly convex, so the alternation (two-block coordinate descent
with each block minimised exactly) converges to the joint minimum (Grippo & Sciandrone,
"On the convergence of the block nonlinear Gauss-Seidel method", 2000)."""

from __future__ import annotations

from typing import Any

import numpy as np

from polytask.classic.base import ClassicMTLEstimator
from polytask.classic.solver import Array


class AlternatingStructurePenalty(ClassicMTLEstimator):
    """Base of the alternating estimators. A subclass gives the starting structure, its
    closed-form step, and how the ``W`` step uses it; ``rounds`` bounds the alternations
    and ``tol`` ends them when a round lowers the objective by less (relatively).

    Attributes (after ``fit``):
        objective_: the objective after each ``W`` step (non-increasing).
        n_rounds_: the alternations made.
    """

    rounds: int
    structure_attribute = "structure_"  # where the learned structure is kept

    def _initial_structure(self, T: int) -> Array:
        raise NotImplementedError

    def _structure_step(self, W: Array) -> Array:
        """The structure that minimises the penalty for the weights ``W`` ``(T, d)``."""
        raise NotImplementedError

    def _penalty_matrix(self, structure: Array) -> Array:
        """The ``T x T`` positive definite ``K`` of the ``W`` step's penalty
        ``tr(W^T K W)`` for this structure."""
        raise NotImplementedError

    def _use_structure(self, structure: Array) -> None:
        """Set up the ``W`` step in the variable ``P = K^{1/2} W``: the penalty is then
        ``||P||_F^2`` and the data term sees ``W = K^{-1/2} P``. ``K`` is badly conditioned
        when a structure is near singular (MTRL's ``Omega`` when there are more tasks than
        features, clustered MTL with small ``l2 / alpha``); in ``P`` the step size is set by
        the data term times ``1 / lambda_min(K)`` and the penalty's constant 2, not by
        ``lambda_max(K)``, so the accelerated solver needs far fewer steps."""
        values, Q = np.linalg.eigh(self._penalty_matrix(structure))
        values = np.maximum(values, values.max() * 1e-15)
        self._root_ = (Q / np.sqrt(values)) @ Q.T  # K^{-1/2}
        self._root_inverse_ = (Q * np.sqrt(values)) @ Q.T  # K^{1/2}
        self._combine_norm2 = 1.0 / float(values.min())

    def _combine(self, P: Array) -> Array:
        return self._root_ @ P

    def _combine_adjoint(self, G: Array) -> Array:
        return self._root_ @ G

    def _smooth_penalty(self, P: Array) -> tuple[float, Array]:
        return float(np.sum(P * P)), 2 * P

    def _penalty_lipschitz(self) -> float:
        return 2.0

    def _fitted_parameters(self, P: Array) -> None:
        self._fitted_root_ = self._root_

    def _path_start(self) -> Array | None:
        """The warm start (the last fit's parameters, in its own ``P``) moved to this
        fit's ``P``: ``P_new = K_new^{1/2} K_old^{-1/2} P_old``."""
        start = super()._path_start()
        if start is None or getattr(self, "_fitted_root_", None) is None:
            return start
        if self._fitted_root_.shape != self._root_.shape:
            return None
        moved = start.copy()
        width = self.n_features_in_
        moved[:, :width] = self._root_inverse_ @ (self._fitted_root_ @ start[:, :width])
        return moved

    def _prepare(self) -> None:
        structure = getattr(self, "_learned", None)
        if structure is None or structure.shape[0] != len(self.tasks_):
            structure = self._initial_structure(len(self.tasks_))
        setattr(self, self.structure_attribute, structure)
        self._use_structure(structure)

    def fit(self, X: Any, y: Any, task_ids: Any = None) -> Any:
        """Alternate the ``W`` step (each warm-started from the last) and the structure
        step until a round lowers the objective by less than ``tol`` relatively, or
        ``rounds`` alternations.
        A path's warm start (:class:`~polytask.classic.ClassicMTLCV`) starts from the last
        fit's structure as well as its weights."""
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        path_start = self._path_start()
        if path_start is None:
            self._learned: Array | None = None
        self.objective_ = []
        try:
            for rounds in range(1, self.rounds + 1):
                self.n_rounds_ = rounds
                super().fit(X, y, task_ids)  # the W step, with the structure of _prepare
                self.objective_.append(self.objective_value_)
                self._learned = self._structure_step(self.coef_)
                self._warm_start = self._parameters_
                if len(self.objective_) > 1:
                    drop = self.objective_[-2] - self.objective_[-1]
                    if drop <= self.tol * max(abs(self.objective_[-1]), 1e-300):
                        break
        finally:
            self._warm_start = path_start
        setattr(self, self.structure_attribute, self._learned)
        return self
