"""The logistic data term: the classic estimators as scikit-learn binary classifiers."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from polytask.classic.base import ClassicMTLEstimator
from polytask.classic.losses import LogisticLoss
from polytask.classic.solver import Array


class ClassicMTLClassifier(ClassifierMixin, ClassicMTLEstimator):
    """Binary classification: the data term is ``sum_t (1/m_t) sum_{i in t} log(1 +
    exp(-s_i (x_i w_t + b_t)))``, ``s_i = +1`` for ``classes_[1]`` and ``-1`` for
    ``classes_[0]`` (MALSAR's logistic solvers, averaged per task). The two classes are
    shared by all tasks; a task's rows may hold one class only. A NaN in a float ``y`` is a
    missing label. More than two classes is an error: wrap the estimator in scikit-learn's
    ``OneVsRestClassifier``."""

    _loss = LogisticLoss

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _encode_targets(self, y: Any) -> Array:
        y = column_or_1d(
            check_array(y, ensure_2d=False, ensure_all_finite=False, dtype=None), warn=True
        )
        missing = np.zeros(len(y), dtype=bool)
        if y.dtype.kind == "f":
            if np.isinf(y).any():
                raise ValueError("y contains infinity (a missing label is NaN)")
            missing = np.isnan(y)
        if missing.all():
            raise ValueError("y has no label: every value is NaN (a missing label)")
        check_classification_targets(y[~missing])
        kind = type_of_target(y[~missing], input_name="y", raise_unknown=True)
        if kind != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{kind}: wrap {type(self).__name__} in sklearn.multiclass.OneVsRestClassifier"
            )
        self.classes_ = np.unique(y[~missing])
        if len(self.classes_) != 2:
            raise ValueError(
                f"y has one class {self.classes_.tolist()}: a classifier needs two classes"
            )
        signs = np.full(len(y), np.nan)
        signs[~missing] = np.where(y[~missing] == self.classes_[1], 1.0, -1.0)
        return signs

    def decision_function(self, X: Any, task_ids: Any = None) -> Array:
        """Each row's score ``x w_t + b_t`` ``(n,)``: positive means ``classes_[1]``."""
        return self._scores(X, task_ids)

    def predict_proba(self, X: Any, task_ids: Any = None) -> Array:
        """``(n, 2)`` probabilities of ``classes_[0]`` and ``classes_[1]``."""
        p = expit(self._scores(X, task_ids))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any, task_ids: Any = None) -> Array:
        """Each row's class ``(n,)``."""
        check_is_fitted(self, "coef_")
        return self.classes_[(self._scores(X, task_ids) > 0).astype(int)]

    def score(self, X: Any, y: Any, sample_weight: Any = None, task_ids: Any = None) -> float:
        """Accuracy of the predictions (scikit-learn's ``score``, with the rows' tasks)."""
        return float(accuracy_score(y, self.predict(X, task_ids), sample_weight=sample_weight))
