"""What every classic multi-task estimator shares: the scikit-learn contract with task
ids, the solver set-up, and each row's linear score.

Data: rows ``X`` ``(n, d)``, targets ``y`` ``(n,)``, and each row's task, given as
``task_ids`` ``(n,)`` or as the column ``task_column`` of ``X`` (which scikit-learn's
scorers and ``GridSearchCV`` pass along, since they never pass metadata to ``predict``).
Without either, every row belongs to one task. A NaN target is a missing label: the row is
left out. Weights ``coef_`` are ``(T, d)`` (as scikit-learn's ``MultiTaskLasso``), one row
per task of ``tasks_``; ``intercept_`` ``(T,)`` is each task's own, unpenalised.

An estimator is a penalty (a subclass of :class:`ClassicMTLEstimator` giving the hooks
below) combined with a data term (:class:`~polytask.classic.regressor.ClassicMTLRegressor`:
squared loss; :class:`~polytask.classic.classifier.ClassicMTLClassifier`: logistic loss).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from polytask.classic.losses import LogisticLoss, SquaredLoss, TaskRows
from polytask.classic.solver import Array, fista


class AllZeroWeightsWarning(UserWarning):
    """A fit whose weights are all 0: the penalty is too strong for any feature to enter,
    so each task predicts its own mean (or base rate)."""


class ClassicMTLEstimator(BaseEstimator):
    """Base of the classic estimators: ``min_P data(W(P), b) + smooth(P) + h(P)``.

    A penalty subclass gives the smooth part's value and gradient, the proximal operator
    of the non-smooth part ``h`` and a Lipschitz constant; most penalise ``W`` itself
    (``P = W``), while a decomposition such as robust MTL's ``W = L + S`` gives the map
    ``P -> W`` (:meth:`_combine`) and its adjoint. The data term (squared or logistic loss)
    comes from the regressor or classifier base.
    """

    task_column: int | None
    fit_intercept: bool
    max_iter: int
    tol: float
    _loss: type[SquaredLoss] | type[LogisticLoss]
    _warm_start: Array | None  # set by a path (ClassicMTLCV) or between alternations

    # ------------------------------------------------------------------ what penalties give
    def _smooth_penalty(self, P: Array) -> tuple[float, Array]:
        """``(value, gradient)`` of the smooth part of the penalty."""
        return 0.0, np.zeros_like(P)

    def _penalty_lipschitz(self) -> float:
        """A Lipschitz constant of the smooth penalty's gradient (read once per fit)."""
        return 0.0

    def _check_params(self) -> None:
        """Refuse out-of-range settings once, before solving: ``alpha``, ``beta`` and ``l2``
        (where an estimator has them) must be >= 0."""
        for name in ("alpha", "beta", "l2"):
            value = getattr(self, name, 0.0)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def _prox(self, P: Array, step: float) -> Array:
        """The proximal operator of the non-smooth part (the identity when there is none)."""
        return P

    def _nonsmooth_penalty(self, P: Array) -> float:
        return 0.0

    def _prepare(self) -> None:
        """Set up what the penalty needs once ``tasks_`` is known (before solving)."""

    def _exact_solution(self, loss: SquaredLoss | LogisticLoss) -> Array | None:
        """The minimiser in closed form where the penalty has one (``None``: solve)."""
        return None

    def _parameter_width(self, d: int) -> int:
        """Columns of ``P`` for ``d`` features (``d`` when ``P = W``)."""
        return d

    def _combine(self, P: Array) -> Array:
        """The weights ``W`` ``(T, d)`` from the solver's parameters ``P`` (a linear map)."""
        return P

    def _combine_adjoint(self, G: Array) -> Array:
        """The adjoint of :meth:`_combine`: a gradient in ``W`` as one in ``P``."""
        return G

    _combine_norm2 = 1.0  # the squared operator norm of _combine

    def _path_start(self) -> Array | None:
        """The solver's starting point: ``None`` (zeros) unless a regularisation path
        (:class:`~polytask.classic.ClassicMTLCV`) set a warm start."""
        return getattr(self, "_warm_start", None)

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

    def _encode_targets(self, y: Any) -> Array:
        """The targets as floats for the loss, NaN for a missing label (given by the
        regressor or classifier base)."""
        raise NotImplementedError

    def fit(self, X: Any, y: Any, task_ids: Any = None) -> Any:
        """Fit one linear model per task (see the module docstring for the data).

        Args:
            X: ``(n, d)`` features (with the task column when ``task_column`` is set).
            y: ``(n,)`` targets; NaN marks a missing label.
            task_ids: ``(n,)`` task of each row (any hashable values), or ``None``.
        """
        loss = self._loss(self._training_rows(X, y, task_ids), self.fit_intercept)
        T, d = len(self.tasks_), loss.rows.X.shape[1]
        p = self._parameter_width(d)

        def parts(theta: Array) -> tuple[Array, Array | None]:
            return theta[:, :p], (theta[:, p] if loss.bias_columns else None)

        def objective(theta: Array) -> float:
            P, bias = parts(theta)
            data = loss.value(self._combine(P), bias)
            return data + self._smooth_penalty(P)[0] + self._nonsmooth_penalty(P)

        def gradient(theta: Array) -> Array:
            P, bias = parts(theta)
            grad_w, grad_bias = loss.gradient(self._combine(P), bias)
            grad_p = self._combine_adjoint(grad_w) + self._smooth_penalty(P)[1]
            return grad_p if grad_bias is None else np.column_stack([grad_p, grad_bias])

        def prox(theta: Array, step: float) -> Array:
            out = theta.copy()
            out[:, :p] = self._prox(theta[:, :p], step)
            return out

        exact = self._exact_solution(loss)
        if exact is not None:  # a quadratic with a closed form: one direct solve
            theta, iterations, value = exact, 1, objective(exact)  # scikit-learn: n_iter_ >= 1
        else:
            start = self._path_start()
            if start is None or start.shape != (T, p + loss.bias_columns):
                start = np.zeros((T, p + loss.bias_columns))

            def weights(theta: Array) -> Array:  # the stopping rule compares W (and b)
                P, bias = parts(theta)
                W = self._combine(P)
                return W if bias is None else np.column_stack([W, bias])

            lipschitz = loss.lipschitz * self._combine_norm2 + self._penalty_lipschitz()
            solution = fista(
                gradient, objective, prox, lipschitz, start, self.max_iter, self.tol, weights
            )
            theta, iterations, value = solution.W, solution.iterations, solution.objective
        self._parameters_ = theta
        P, bias = parts(theta)
        self._fitted_parameters(P)
        self.coef_ = self._combine(P)
        self.intercept_ = loss.intercepts(self.coef_, bias)
        self.n_iter_ = iterations
        self.objective_value_ = value
        if self.coef_.size and not np.any(self.coef_):
            top = self._path_range(loss.rows)[0]
            warnings.warn(
                f"{type(self).__name__}: every weight is 0, so each task predicts its own "
                f"{'base rate' if loss.bias_columns else 'mean'}: the penalty is too strong for "
                f"these data (the path starts near {top:.3g}); lower it, or choose it with "
                "polytask.classic.ClassicMTLCV",
                AllZeroWeightsWarning,
                stacklevel=2,
            )
        return self

    def _training_rows(self, X: Any, y: Any, task_ids: Any) -> TaskRows:
        """The labelled rows sorted by task, the targets as the loss reads them; sets
        ``tasks_`` and checks the settings (and prepares the penalty)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        X, ids = self._split_tasks(X, task_ids, fitting=True)
        y = self._encode_targets(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} rows, X has {X.shape[0]}")
        keep = ~np.isnan(y)
        X, y, ids = X[keep], y[keep], ids[keep]
        self._check_params()
        self.tasks_, codes = np.unique(ids, return_inverse=True)
        self._prepare()
        return TaskRows.sort(X, y, codes, len(self.tasks_))

    def _path_range(self, rows: TaskRows) -> tuple[float, float, bool]:
        """The default regularisation path's ``(top, bottom, exact)``; ``exact``: the top is
        the smallest value at which ``W = 0`` is optimal (known for norm penalties). Here,
        for a smooth penalty: from 10 down to 1e-5 times the data term's curvature ``L`` (its
        gradient's Lipschitz constant), from where the penalty dominates to where the data
        do (not exact)."""
        curvature = self._loss(rows, self.fit_intercept).lipschitz
        return 10.0 * curvature, 1e-5 * curvature, False

    def _gradient_at_zero(self, rows: TaskRows) -> Array:
        """The data term's gradient in ``W`` at ``W = 0`` with the best intercepts:
        ``-(1/m_t) sum_i (x_i - mean x_t)(y_i - mean y_t)`` for squared loss, half that on
        the +-1 labels for logistic loss (``sigma(b_t)`` is then the task's positive
        rate)."""
        W = np.zeros((len(rows.counts), rows.X.shape[1]))
        grad = SquaredLoss(rows, self.fit_intercept).gradient(W, None)[0]
        return grad if self._loss is SquaredLoss else grad / 2

    def _fitted_parameters(self, P: Array) -> None:
        """Keep what the penalty's parameters say beyond ``W`` (robust MTL's parts)."""

    def _scores(self, X: Any, task_ids: Any) -> Array:
        """Each row's linear score ``x w_t + b_t`` by its task's model ``(n,)``; a task id
        not seen in ``fit`` is an error naming it."""
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
