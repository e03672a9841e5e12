"""The regularisation of a classic estimator chosen by cross-validation along a
warm-started path, as scikit-learn's ``LassoCV`` does for the lasso."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from polytask.classic.base import AllZeroWeightsWarning, ClassicMTLEstimator
from polytask.classic.registry import METHODS
from polytask.classic.solver import Array


def path_parameter(estimator: Any) -> str:
    """The parameter a path varies for ``estimator``, from the registry."""
    name = type(estimator).__name__
    for method in METHODS.values():
        if name in (method.regressor, method.classifier):
            return method.path_parameter
    raise ValueError(f"{name} is not a registered classic estimator; pass parameter=")


class ClassicMTLCV(MetaEstimatorMixin, BaseEstimator):
    """``estimator`` refitted with the value of its regularisation parameter that
    cross-validation prefers; each fold fits the whole path from the largest value down,
    every fit warm-started from the previous solution (so a path costs little more than
    its last fit, as in scikit-learn's ``LassoCV``).

    The default path: ``n_values`` values evenly in log scale over the estimator's range.
    For the l2,1 and trace-norm penalties (and robust MTL's ``alpha``) it runs from the
    smallest ``alpha`` at which every weight is 0 (exact for the first two: the dual norm
    of the data term's gradient at 0) down to 1e-4 times it, as ``LassoCV``. For the smooth
    penalties it runs from 10 down to 1e-5 times the data term's curvature (its gradient's
    Lipschitz constant). A choice at an edge of the path (other than an exact top) warns:
    widen it with ``values``.

    Folds: with an integer ``cv``, stratified by task, so every task has rows in every
    training fold (a task with fewer labelled rows than folds is an error naming it); rows
    whose target is NaN (a missing label) are in no fold.
    Task ids given to ``fit`` as ``task_ids`` are carried to the folds as a column, so any
    scikit-learn scorer sees each row's task.

    Args:
        estimator: a classic estimator (default ``JointFeatureSelectionMTL()``).
        parameter: the parameter to choose (default: the registry's, ``alpha`` or ``l2``).
        values: the path (any order; fitted from the largest); ``None`` for the default.
        n_values: the default path's length.
        eps: the path's bottom as a fraction of its top (default: the estimator's range).
        cv: folds (an int, a splitter, or an iterable of (train, test) index pairs).
        scoring: a scikit-learn scorer name or callable; default ``neg_mean_squared_error``
            for regressors and ``neg_log_loss`` for classifiers.

    Attributes:
        values_: the path, largest first ``(n_values,)``.
        cv_scores_: the score of each fold and value ``(n_folds, n_values)``.
        best_value_: the chosen value; ``best_estimator_``: refitted on all rows with it.
    """

    def __init__(
        self,
        estimator: Any = None,
        parameter: str | None = None,
        values: Any = None,
        n_values: int = 12,
        eps: float | None = None,
        cv: Any = 3,
        scoring: Any = None,
    ) -> None:
        self.estimator = estimator
        self.parameter = parameter
        self.values = values
        self.n_values = n_values
        self.eps = eps
        self.cv = cv
        self.scoring = scoring

    def _base(self) -> Any:
        if self.estimator is not None:
            return self.estimator
        from polytask.classic.joint_feature_selection import JointFeatureSelectionMTL

        return JointFeatureSelectionMTL()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = get_tags(self._base())
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        return tags

    def _path(self, base: Any, X: Any, y: Any, task_ids: Any) -> tuple[Array, bool]:
        if self.values is not None:
            values = np.sort(np.asarray(self.values, dtype=np.float64).ravel())[::-1]
            if len(values) == 0 or not np.all(values >= 0):
                raise ValueError(f"values must be a non-empty list of numbers >= 0, got {values}")
            return values, False
        probe = clone(base)
        top, bottom, exact = probe._path_range(probe._training_rows(X, y, task_ids))
        if not top > 0:  # the data term is flat at 0 (constant targets): any small path
            top, bottom = 1.0, 1e-4
        if self.eps is not None:
            bottom = top * self.eps
        return np.geomspace(top, bottom, self.n_values), exact

    def fit(self, X: Any, y: Any, task_ids: Any = None) -> ClassicMTLCV:
        """Score the path on each fold, choose the best mean score, refit on all rows.

        Args: as the estimator's ``fit``.
        """
        base = self._base()
        if not isinstance(base, ClassicMTLEstimator):
            raise ValueError(
                f"ClassicMTLCV takes a polytask.classic estimator, not {type(base).__name__}; "
                "for other estimators use sklearn.model_selection.GridSearchCV"
            )
        parameter = self.parameter or path_parameter(base)
        if parameter not in base.get_params():
            raise ValueError(f"{type(base).__name__} has no parameter {parameter!r}")
        self.values_, exact_top = self._path(base, X, y, task_ids)
        data, inner = self._with_task_column(base, X, task_ids)
        y_array = np.asarray(y)
        if y_array.dtype.kind == "f":  # a missing label is neither trained on nor scored
            labelled = ~np.isnan(y_array)
            data, y_array = data[labelled], y_array[labelled]
        codes = np.unique(np.asarray(data)[:, inner.task_column], return_inverse=True)[1]
        scorer = get_scorer(self.scoring or self._default_scoring(base))
        folds = list(self._folds(codes, y_array, data))
        self.cv_scores_ = np.empty((len(folds), len(self.values_)))
        for f, (train, test) in enumerate(folds):
            model = clone(inner)
            for i, value in enumerate(self.values_):
                model.set_params(**{parameter: value})
                with warnings.catch_warnings():  # the path's top is all zeros by design
                    warnings.simplefilter("ignore", AllZeroWeightsWarning)
                    model.fit(data[train], y_array[train])
                model._warm_start = model._parameters_
                self.cv_scores_[f, i] = scorer(model, data[test], y_array[test])
        best = int(np.argmax(self.cv_scores_.mean(axis=0)))
        self.best_value_ = float(self.values_[best])
        edges = {len(self.values_) - 1} | (set() if exact_top else {0})
        if best in edges and len(self.values_) > 1:
            warnings.warn(
                f"ClassicMTLCV chose {parameter}={self.best_value_:.3g}, the edge of the path "
                f"[{self.values_[-1]:.3g}, {self.values_[0]:.3g}]; the best value may lie "
                "beyond it: widen the path with values=[...]",
                UserWarning,
                stacklevel=2,
            )
        self.best_estimator_ = clone(base).set_params(**{parameter: self.best_value_})
        self.best_estimator_.fit(X, y, task_ids)
        return self

    @staticmethod
    def _default_scoring(base: Any) -> str:
        classifier = get_tags(base).estimator_type == "classifier"
        return "neg_log_loss" if classifier else "neg_mean_squared_error"

    @staticmethod
    def _with_task_column(base: Any, X: Any, task_ids: Any) -> tuple[Array, Any]:
        """The rows with each row's task as a column, and the estimator reading it."""
        if base.task_column is not None:
            if task_ids is not None:
                raise ValueError("give the tasks either as task_column or as task_ids, not both")
            return np.asarray(X), base  # numbers stay numbers; string task ids stay strings
        X = np.asarray(X)
        if task_ids is None:
            codes = np.zeros(len(X))
        else:
            codes = np.unique(np.asarray(task_ids), return_inverse=True)[1].astype(np.float64)
        return np.column_stack([codes, X]).astype(np.float64), clone(base).set_params(task_column=0)

    def _folds(self, codes: Array, y: Array, data: Array) -> Any:
        if not isinstance(self.cv, int | np.integer):
            return check_cv(self.cv).split(data, y)
        counts = np.bincount(codes)
        if counts.min() < self.cv:
            raise ValueError(
                f"a task has {counts.min()} labelled row(s), fewer than cv={self.cv} folds: "
                "lower cv or leave that task out"
            )
        return StratifiedKFold(self.cv, shuffle=True, random_state=0).split(data, codes)

    def predict(self, X: Any, task_ids: Any = None) -> Array:
        """The refitted estimator's predictions."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X, task_ids)

    def predict_proba(self, X: Any, task_ids: Any = None) -> Array:
        """The refitted classifier's probabilities."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X, task_ids)

    def score(self, X: Any, y: Any, task_ids: Any = None) -> float:
        """The refitted estimator's ``score`` (R^2 or accuracy)."""
        check_is_fitted(self, "best_estimator_")
        return float(self.best_estimator_.score(X, y, task_ids=task_ids))
