"""The squared-loss data term: the classic estimators as scikit-learn regressors."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_array, column_or_1d

from polytask.classic.base import ClassicMTLEstimator
from polytask.classic.losses import SquaredLoss
from polytask.classic.solver import Array


class ClassicMTLRegressor(RegressorMixin, ClassicMTLEstimator):
    """Regression: the data term is ``sum_t (1 / (2 m_t)) sum_{i in t} (y_i - x_i w_t -
    b_t)^2``, each task's mean squared error (reference text 01). With one shared ``X`` of
    ``n`` rows this is scikit-learn's ``(1 / (2n)) ||Y - X W^T||_F^2``; MALSAR sums squared
    errors instead (its ``rho`` is ours times ``2 n``)."""

    _loss = SquaredLoss

    def _encode_targets(self, y: Any) -> Array:
        y = column_or_1d(
            check_array(y, ensure_2d=False, ensure_all_finite="allow-nan", dtype=np.float64),
            warn=True,
        )
        if np.isinf(y).any():
            raise ValueError("y contains infinity (a missing label is NaN)")
        if np.isnan(y).all():
            raise ValueError("y has no label: every value is NaN (a missing label)")
        return y

    def predict(self, X: Any, task_ids: Any = None) -> Array:
        """Each row's prediction ``x w_t + b_t`` by its task's model ``(n,)``."""
        return self._scores(X, task_ids)

    def score(self, X: Any, y: Any, sample_weight: Any = None, task_ids: Any = None) -> float:
        """R^2 of the predictions (scikit-learn's ``score``, with the rows' tasks)."""
        return float(r2_score(y, self.predict(X, task_ids), sample_weight=sample_weight))
