"""Penalties with a task-structure matrix learned with the weights (MTRL's task covariance,
clustered MTL's cluster structure): alternate the ``W`` step with the structure fixed (a
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
    and ``tol`` ends them when the structure changes by less (relative Frobenius norm).

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

    def _use_structure(self, structure: Array) -> None:
        """Precompute what the ``W`` step needs from ``structure``."""
        raise NotImplementedError

    def _prepare(self) -> None:
        structure = getattr(self, "_learned", None)
        if structure is None or structure.shape[0] != len(self.tasks_):
            structure = self._initial_structure(len(self.tasks_))
        setattr(self, self.structure_attribute, structure)
        self._use_structure(structure)

    def fit(self, X: Any, y: Any, task_ids: Any = None) -> Any:
        """Alternate the ``W`` step (each warm-started from the last) and the structure
        step until the structure changes by less than ``tol`` or ``rounds`` alternations."""
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        self._learned: Array | None = None
        path_start = self._path_start()
        self.objective_ = []
        try:
            for rounds in range(1, self.rounds + 1):
                self.n_rounds_ = rounds
                super().fit(X, y, task_ids)  # the W step, with the structure of _prepare
                self.objective_.append(self.objective_value_)
                old = getattr(self, self.structure_attribute)
                new = self._structure_step(self.coef_)
                change = float(np.linalg.norm(new - old)) / max(float(np.linalg.norm(new)), 1e-300)
                self._learned = new
                self._warm_start = self._parameters_
                if change <= self.tol:
                    break
        finally:
            self._warm_start = path_start
        setattr(self, self.structure_attribute, self._learned)
        return self
