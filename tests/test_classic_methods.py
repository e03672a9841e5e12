"""Checks every registered classic estimator passes, read from the registry
(``polytask.classic.METHODS``): adding a method adds it here with no edit. Regressors and
their logistic twins: scikit-learn's estimator checks, warm starts that land on the cold
start's solution, and the per-task data contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from polytask.classic import METHODS

KINDS = [(name, kind) for name in METHODS for kind in ("regressor", "classifier")]


def related_tasks(kind: str, T: int = 3, m: int = 50, d: int = 4, seed: int = 0):
    """Rows of T related linear tasks (labels thresholded for the classifier)."""
    g = np.random.default_rng(seed)
    base = g.normal(size=d)
    X = g.normal(size=(T * m, d))
    ids = np.repeat(np.arange(T), m)
    W = base + 0.3 * g.normal(size=(T, d))
    noise = 0.3 if kind == "regressor" else 1.0  # classes that overlap: a finite optimum
    score = np.einsum("nd,nd->n", X, W[ids]) + noise * g.normal(size=T * m)
    y = score if kind == "regressor" else (score > 0).astype(int)
    return X, y, ids


@pytest.mark.parametrize(("name", "kind"), KINDS)
def test_check_estimator_passes(name: str, kind: str) -> None:
    """scikit-learn's own estimator checks (without task ids every row is one task)."""
    from sklearn.utils.estimator_checks import check_estimator

    # A small penalty: at the default 1.0 the logistic l2,1, trace-norm and robust
    # classifiers set every weight to 0 on scikit-learn's data (and warn that they do).
    settings = {METHODS[name].path_parameter: 0.01, "max_iter": 3000, "tol": 1e-7}
    estimator = METHODS[name].load(kind)(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert not failed, failed


@pytest.mark.parametrize(("name", "kind"), KINDS)
def test_warm_start_lands_on_the_cold_solution(name: str, kind: str) -> None:
    """A path's warm start (another regularisation's solution) changes where the solver
    starts, not where it ends."""
    X, y, ids = related_tasks(kind)
    cls = METHODS[name].load(kind)
    parameter = METHODS[name].path_parameter
    settings = {"tol": 1e-9, "max_iter": 100_000, parameter: 0.02}
    cold = cls(**settings).fit(X, y, task_ids=ids)
    warm = cls(**{**settings, parameter: 0.2}).fit(X, y, task_ids=ids)
    warm.set_params(**{parameter: 0.02})
    warm._warm_start = warm._parameters_
    warm.fit(X, y, task_ids=ids)
    assert np.any(cold.coef_)
    assert np.allclose(warm.coef_, cold.coef_, atol=1e-5)
    assert np.allclose(warm.intercept_, cold.intercept_, atol=1e-5)


@pytest.mark.parametrize(("name", "kind"), KINDS)
def test_task_column_and_task_ids_agree_and_missing_labels_are_left_out(
    name: str, kind: str
) -> None:
    X, y, ids = related_tasks(kind, seed=1)
    cls = METHODS[name].load(kind)
    settings = {METHODS[name].path_parameter: 0.05, "tol": 1e-9, "max_iter": 50_000}
    by_ids = cls(**settings).fit(X, y, task_ids=ids)
    assert np.any(by_ids.coef_)  # a real comparison, not of two zero solutions
    by_column = cls(**settings, task_column=0).fit(np.column_stack([ids, X]), y)
    assert np.allclose(by_ids.coef_, by_column.coef_, atol=1e-6)
    labels = y.astype(np.float64)
    labels[::5] = np.nan  # missing labels
    kept = ~np.isnan(labels)
    with_missing = cls(**settings).fit(X, labels, task_ids=ids)
    without = cls(**settings).fit(X[kept], y[kept], task_ids=ids[kept])
    assert np.allclose(with_missing.coef_, without.coef_, atol=1e-6)
