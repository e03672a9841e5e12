"""What every classic multi-task regressor shares: the scikit-learn contract with task ids,
the least-squares data term vectorised over tasks, and prediction.

Data: rows ``X`` ``(n, d)``, targets ``y`` ``(n,)``, and each row's task, given as
``task_ids`` ``(n,)`` or as the column ``task_column`` of ``X`` (which scikit-learn's
scorers and ``GridSearchCV`` pass along, since they never pass metadata to ``predict``).
Without either, every row belongs to one task. A NaN target is a missing label: the row is
left out. Weights ``coef_`` are ``(T, d)`` (as scikit-learn's ``MultiTaskLasso``), one row
per task of ``tasks_``; ``intercept_`` ``(T,)`` is each task's own, unpenalised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from polytask.classic.solver import Array, fista


class ClassicMTLRegressor(RegressorMixin, BaseEstimator):
    """Base of the classic estimators: a subclass gives the penalty's gradient (smooth
    part), its proximal operator (non-smooth part) and their Lipschitz constant.

    The data term is ``sum_t (1 / (2 m_t)) sum_{i in t} (y_i - x_i w_t - b_t)^2``: each task's
    mean squared error, so a task with many rows does not outweigh the others (reference
    text 01). With one shared ``X`` of ``n`` rows this is scikit-learn's
    ``(1 / (2n)) ||Y - X W^T||_F^2``; MALSAR sums squared errors instead (its ``rho`` is
    ours times ``2 n``).
    """

    task_column: int | None
    fit_intercept: bool
    max_iter: int
    tol: float

    # ------------------------------------------------------------------ what subclasses give
    def _smooth_penalty(self, W: Array) -> tuple[float, Array]:
        """``(value, gradient)`` of the smooth part of the penalty."""
        return 0.0, np.zeros_like(W)

    def _penalty_lipschitz(self) -> float:
        """A Lipschitz constant of the smooth penalty's gradient (read once per fit)."""
        return 0.0

    def _check_params(self) -> None:
        """Refuse out-of-range settings once, before solving: ``alpha`` and ``l2`` (where an
        estimator has them) must be >= 0."""
        for name in ("alpha", "l2"):
            value = getattr(self, name, 0.0)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def _prox(self, V: Array, step: float) -> Array:
        """The proximal operator of the non-smooth part (the identity when there is none)."""
        return V

    def _nonsmooth_penalty(self, W: Array) -> float:
        return 0.0

    def _prepare(self) -> None:
        """Set up what the penalty needs once ``tasks_`` is known (before solving)."""

    # ------------------------------------------------------------------ data
    def _split_tasks(self, X: Any, task_ids: Any, fitting: bool) -> tuple[Array, Array]:
        """Features without the task column, and each row's task id."""
        if self.task_column is not None:
            if task_ids is not None:
                raise ValueError("give the tasks either as task_column or as task_ids, not both")
            full = check_array(X, ensure_all_finite=False, dtype=None)
            if not -full.shape[1] <= self.task_column < full.shape[1]:
                raise ValueError(
                    f"task_column={self.task_column} but X has {full.shape[1]} columns"
                )
            ids = full[:, self.task_column]
            X = np.delete(full, self.task_column, axis=1).astype(np.float64)
        elif task_ids is None:
            ids = None
        else:
            ids = np.asarray(task_ids)
        X = validate_data(self, X, reset=fitting, dtype=np.float64)
        if ids is None:
            ids = np.zeros(X.shape[0], dtype=np.int64)
        if ids.shape != (X.shape[0],):
            raise ValueError(f"task ids have shape {ids.shape}; X has {X.shape[0]} rows")
        return X, ids

    def fit(self, X: Any, y: Any, task_ids: Any = None) -> ClassicMTLRegressor:
        """Fit one linear model per task (see the class docstring for the data).

        Args:
            X: ``(n, d)`` features (with the task column when ``task_column`` is set).
            y: ``(n,)`` targets; NaN marks a missing label.
            task_ids: ``(n,)`` task of each row (any hashable values), or ``None``.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        X, ids = self._split_tasks(X, task_ids, fitting=True)
        y = column_or_1d(
            check_array(y, ensure_2d=False, ensure_all_finite="allow-nan", dtype=np.float64),
            warn=True,
        )
        if np.isinf(y).any():
            raise ValueError("y contains infinity (a missing label is NaN)")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} rows, X has {X.shape[0]}")
        keep = ~np.isnan(y)
        if not keep.any():
            raise ValueError("y has no label: every value is NaN (a missing label)")
        X, y, ids = X[keep], y[keep], ids[keep]
        self._check_params()
        self.tasks_, codes = np.unique(ids, return_inverse=True)
        self._prepare()
        order = np.argsort(codes, kind="stable")
        X, y, codes = X[order], y[order], codes[order]
        T, d = len(self.tasks_), X.shape[1]
        counts = np.bincount(codes, minlength=T)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        x_mean = np.add.reduceat(X, starts, axis=0) / counts[:, None]
        y_mean = np.add.reduceat(y, starts) / counts
        if self.fit_intercept:  # each task's own intercept: centre each task's rows
            X = X - x_mean[codes]
            y = y - y_mean[codes]
        row_weight = 1.0 / counts[codes]
        # Lipschitz constant of the data term: max_t lambda_max(X_t^T X_t) / m_t.
        data_L = max(
            float(np.linalg.eigvalsh(X[a : a + m].T @ X[a : a + m])[-1]) / m
            for a, m in zip(starts, counts, strict=True)
        )

        def residual(W: Array) -> Array:
            return np.einsum("nd,nd->n", X, W[codes]) - y

        def objective(W: Array) -> float:
            """The whole objective (the restart test reads it; no gradient)."""
            r = residual(W)
            smooth = 0.5 * float((r * row_weight) @ r) + self._smooth_penalty(W)[0]
            return smooth + self._nonsmooth_penalty(W)

        def gradient(W: Array) -> Array:
            scaled = residual(W) * row_weight
            return np.add.reduceat(scaled[:, None] * X, starts, axis=0) + self._smooth_penalty(W)[1]

        solution = fista(
            gradient, objective, self._prox, data_L + self._penalty_lipschitz(),
            np.zeros((T, d)), self.max_iter, self.tol,
        )  # fmt: skip
        self.coef_ = solution.W
        self.n_iter_ = solution.iterations
        self.objective_value_ = solution.objective
        self.intercept_ = (
            y_mean - np.einsum("td,td->t", x_mean, self.coef_)
            if self.fit_intercept
            else np.zeros(T)
        )
        return self

    def predict(self, X: Any, task_ids: Any = None) -> Array:
        """Each row's prediction by its task's model; a task id not seen in ``fit`` is an
        error naming it."""
        check_is_fitted(self, "coef_")
        X, ids = self._split_tasks(X, task_ids, fitting=False)
        # tasks_ is sorted (np.unique): each row's task by binary search, not a Python loop.
        codes = np.searchsorted(self.tasks_, ids).clip(0, len(self.tasks_) - 1)
        unknown = ids[self.tasks_[codes] != ids]
        if len(unknown):
            raise ValueError(
                f"task id(s) {sorted(set(unknown.tolist()), key=str)[:5]} were not seen in "
                f"fit; the fitted tasks are {self.tasks_.tolist()[:10]}"
                f"{'...' if len(self.tasks_) > 10 else ''}"
            )
        return np.einsum("nd,nd->n", X, self.coef_[codes]) + self.intercept_[codes]


def ridge(W: Array, l2: float) -> tuple[float, Array]:
    """``(l2 ||W||_F^2, its gradient 2 l2 W)``; its gradient's Lipschitz constant is
    ``2 l2``."""
    return l2 * float(np.sum(W**2)), 2 * l2 * W
