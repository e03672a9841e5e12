"""Classic regularised MTL estimators against independent references: the proximal operator
against brute-force minimisation, the l2,1 estimator against scikit-learn's MultiTaskLasso,
the mean-regularised estimator against its limits (independent and pooled least squares),
optimality conditions, and the scikit-learn contract with task ids."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy.optimize import minimize
from sklearn.linear_model import LinearRegression, MultiTaskLasso

from polytask.classic import (
    GraphRegularizedMTL,
    IndependentMTL,
    JointFeatureSelectionMTL,
    MeanRegularizedMTL,
    PooledMTL,
    RelationshipMTL,
    TraceNormMTL,
    stack_tasks,
)
from polytask.classic import long_format as dataset_long_format
from polytask.classic.joint_feature_selection import group_soft_threshold
from polytask.classic.trace_norm import singular_value_threshold


def long_format(T: int = 4, m: int = 40, d: int = 5, seed: int = 0, shared_x: bool = False):
    """Rows of T related linear tasks: X (T m, d), y, task ids; also the per-task pieces."""
    g = np.random.default_rng(seed)
    base = g.normal(size=d)
    X_shared = g.normal(size=(m, d))
    xs, ys, ids = [], [], []
    for t in range(T):
        X = X_shared if shared_x else g.normal(size=(m, d))
        w = base + 0.3 * g.normal(size=d)
        w[-1] = 0.0  # a feature no task uses
        xs.append(X)
        ys.append(X @ w + 1.5 * t + 0.1 * g.normal(size=m))
        ids.append(np.full(m, t))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ids), xs, ys


def test_group_soft_threshold_is_the_proximal_operator() -> None:
    g = np.random.default_rng(1)
    V = g.normal(size=(3, 4))
    V[:, 1] *= 0.05  # a column under the threshold
    tau = 0.4

    def objective(w: np.ndarray) -> float:
        W = w.reshape(V.shape)
        return tau * float(np.linalg.norm(W, axis=0).sum()) + 0.5 * float(np.sum((W - V) ** 2))

    brute = minimize(objective, V.ravel(), method="Powell", options={"xtol": 1e-10, "ftol": 1e-14})
    assert np.allclose(group_soft_threshold(V, tau), brute.x.reshape(V.shape), atol=1e-5)
    assert np.all(group_soft_threshold(V, tau)[:, 1] == 0)


def test_l21_with_one_shared_x_equals_multitask_lasso() -> None:
    X, y, ids, xs, ys = long_format(shared_x=True)
    alpha = 0.05
    ours = JointFeatureSelectionMTL(alpha=alpha, tol=1e-12, max_iter=100_000).fit(
        X, y, task_ids=ids
    )
    theirs = MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(xs[0], np.stack(ys, 1))
    assert np.allclose(ours.coef_, theirs.coef_, atol=1e-6)
    assert np.allclose(ours.intercept_, theirs.intercept_, atol=1e-6)


def test_l21_solution_meets_its_optimality_conditions() -> None:
    """Subgradient check: for a used feature j, grad_j f + alpha W_j / ||W_j|| = 0; for an
    unused one, ||grad_j f|| <= alpha (tasks with their own rows here)."""
    X, y, ids, xs, ys = long_format(seed=3)
    alpha = 0.08
    model = JointFeatureSelectionMTL(alpha=alpha, tol=1e-12, max_iter=100_000).fit(
        X, y, task_ids=ids
    )
    grad = np.stack([
        -(x - x.mean(0)).T @ ((yt - yt.mean()) - (x - x.mean(0)) @ w) / len(yt)
        for x, yt, w in zip(xs, ys, model.coef_, strict=True)
    ])  # fmt: skip
    for j in range(X.shape[1]):
        norm = np.linalg.norm(model.coef_[:, j])
        if norm > 0:
            assert np.allclose(grad[:, j] + alpha * model.coef_[:, j] / norm, 0, atol=1e-6)
        else:
            assert np.linalg.norm(grad[:, j]) <= alpha + 1e-8


def test_mean_regularized_limits_are_independent_and_pooled_least_squares() -> None:
    X, y, ids, xs, ys = long_format(seed=2)
    independent = MeanRegularizedMTL(alpha=0.0, tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    for x, yt, w in zip(xs, ys, independent.coef_, strict=True):
        assert np.allclose(w, LinearRegression().fit(x, yt).coef_, atol=1e-7)
    pooled = MeanRegularizedMTL(alpha=1e6, tol=1e-12, max_iter=200_000).fit(X, y, task_ids=ids)
    centred_x = np.vstack([x - x.mean(0) for x in xs])
    centred_y = np.concatenate([yt - yt.mean() for yt in ys])
    shared = np.linalg.lstsq(centred_x, centred_y, rcond=None)[0]  # equal m_t: plain LS
    assert np.allclose(pooled.coef_, shared[None, :], atol=1e-4)


def test_task_column_predicts_each_rows_task_and_names_unknown_tasks() -> None:
    X, y, ids, _, _ = long_format(seed=4)
    with_column = np.column_stack([X[:, :2], ids, X[:, 2:]])
    a = JointFeatureSelectionMTL(alpha=0.01, task_column=2).fit(with_column, y)
    b = JointFeatureSelectionMTL(alpha=0.01).fit(X, y, task_ids=ids)
    assert np.allclose(a.predict(with_column), b.predict(X, task_ids=ids))
    unknown = with_column[:3].copy()
    unknown[:, 2] = 99
    with pytest.raises(ValueError, match=r"task id\(s\) \[99.0\] were not seen in fit"):
        a.predict(unknown)


def test_missing_labels_are_left_out_and_cross_validation_scores_per_task() -> None:
    """With task_column, cross_val_score scores each row with its task's model (with
    task_ids only, a scorer could not pass them and would score a shared model)."""
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    X, y, ids, _, _ = long_format(T=3, m=60, seed=5)
    y_missing = y.copy()
    y_missing[::7] = np.nan
    data = np.column_stack([ids, X])
    model = MeanRegularizedMTL(alpha=0.1, task_column=0)
    assert np.all(np.isfinite(model.fit(data, y_missing).coef_))
    folds = KFold(3, shuffle=True, random_state=0)  # every task in every fold
    scores = cross_val_score(model, data, y, cv=folds, scoring="r2", error_score="raise")
    assert scores.min() > 0.9  # the per-task intercepts (0, 1.5, 3) are used
    search = GridSearchCV(model, {"alpha": [0.01, 1.0]}, cv=folds, error_score="raise")
    search.fit(data, y)
    assert search.best_params_["alpha"] in (0.01, 1.0)


def test_classic_without_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    import polytask.classic

    for name in [m for m in sys.modules if m.startswith(("polytask.classic.", "sklearn"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    importlib.reload(polytask.classic)
    with pytest.raises(ImportError, match=r"pip install 'polytask\[classic\]'"):
        polytask.classic.MeanRegularizedMTL  # noqa: B018


def test_singular_value_threshold_is_the_proximal_operator() -> None:
    g = np.random.default_rng(6)
    V = g.normal(size=(3, 3))
    tau = 0.7

    def objective(w: np.ndarray) -> float:
        W = w.reshape(V.shape)
        return tau * float(np.linalg.svd(W, compute_uv=False).sum()) + 0.5 * float(
            np.sum((W - V) ** 2)
        )

    # The trace norm is not smooth: a derivative-free search only bounds the minimum from
    # above, and random perturbations of the closed form never go below it.
    brute = minimize(objective, V.ravel(), method="Powell", options={"maxfev": 50_000})
    best = objective(singular_value_threshold(V, tau).ravel())
    assert best <= brute.fun + 1e-9
    steps = g.normal(size=(500, V.size)) * np.geomspace(1e-6, 1e-1, 500)[:, None]
    nearby = [objective(singular_value_threshold(V, tau).ravel() + d) for d in steps]
    assert min(nearby) >= best - 1e-12


def test_trace_norm_solution_meets_its_optimality_conditions() -> None:
    """-grad f / alpha = U V^T + Z with U^T Z = 0, Z V = 0 and ||Z||_2 <= 1, for the
    solution's singular vectors U, V: the subgradient condition of the trace norm."""
    X, y, ids, xs, ys = long_format(T=5, seed=7)
    alpha = 0.3
    model = TraceNormMTL(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    grad = np.stack([
        -(x - x.mean(0)).T @ ((yt - yt.mean()) - (x - x.mean(0)) @ w) / len(yt)
        for x, yt, w in zip(xs, ys, model.coef_, strict=True)
    ])  # fmt: skip
    U, s, Vt = np.linalg.svd(model.coef_, full_matrices=False)
    rank = int((s > 1e-8 * s[0]).sum())
    assert 0 < rank < min(model.coef_.shape)  # the penalty did cut the rank
    U, Vt = U[:, :rank], Vt[:rank]
    M = -grad / alpha
    assert np.allclose(U.T @ M @ Vt.T, np.eye(rank), atol=1e-5)
    Z = M - U @ Vt
    assert np.allclose(U.T @ Z, 0, atol=1e-5) and np.allclose(Z @ Vt.T, 0, atol=1e-5)
    assert np.linalg.norm(Z, 2) <= 1 + 1e-6


def test_complete_graph_equals_mean_regularization() -> None:
    """sum_{s<t} ||w_s - w_t||^2 = T sum_t ||w_t - w_bar||^2: the complete graph with
    alpha / T is mean regularisation with alpha."""
    X, y, ids, _, _ = long_format(T=4, seed=8)
    edges = [(s, t) for s in range(4) for t in range(s + 1, 4)]
    graph = GraphRegularizedMTL(graph=edges, alpha=0.5 / 4, tol=1e-12, max_iter=100_000).fit(
        X, y, task_ids=ids
    )
    mean = MeanRegularizedMTL(alpha=0.5, tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    assert np.allclose(graph.coef_, mean.coef_, atol=1e-7)
    with pytest.raises(ValueError, match="names task 9"):
        GraphRegularizedMTL(graph=[(0, 9)]).fit(X, y, task_ids=ids)


def test_baselines_are_the_limits_of_mean_regularization() -> None:
    X, y, ids, _, _ = long_format(seed=9)
    independent = IndependentMTL(tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    zero = MeanRegularizedMTL(alpha=0.0, tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    assert np.allclose(independent.coef_, zero.coef_, atol=1e-8)
    pooled = PooledMTL(tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    strong = MeanRegularizedMTL(alpha=1e6, tol=1e-12, max_iter=200_000).fit(X, y, task_ids=ids)
    assert np.allclose(pooled.coef_, strong.coef_, atol=1e-4)
    assert np.allclose(pooled.coef_, pooled.coef_[:1])  # one weight vector


def test_stack_tasks_and_long_format_give_task_rows() -> None:
    import torch

    from polytask.data.splits import per_task_splits

    X, y, ids = stack_tasks([np.ones((2, 3)), np.zeros((1, 3))], [[1, 2], [3]], names=["a", "b"])
    assert X.shape == (3, 3) and y.tolist() == [1, 2, 3] and ids.tolist() == ["a", "a", "b"]
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(20, 3, generator=g) for _ in range(3)]
    ys = [x.sum(1) + t for t, x in enumerate(xs)]
    data = per_task_splits("toy", xs, ys, ["s1", "s2", "s3"], (0.6, 0.2, 0.2), 0, {})
    X, y, ids = dataset_long_format(data.train)
    assert X.shape == (36, 3) and set(ids.tolist()) == {"s1", "s2", "s3"}
    model = MeanRegularizedMTL(alpha=0.01).fit(X, y, task_ids=ids)
    Xt, yt, idt = dataset_long_format(data.test)
    assert np.mean((model.predict(Xt, task_ids=idt) - yt) ** 2) < 1e-3


def test_the_docs_example_runs_on_school() -> None:
    """docs/classic.md's Python examples, verbatim and in order, on the local School copy."""
    import re
    from pathlib import Path

    from .conftest import DATA_ROOT, have_data

    if not have_data("school"):
        pytest.skip("local school copy not found")
    page = (Path(__file__).parents[1] / "docs" / "classic.md").read_text()
    snippet = "\n".join(re.findall(r"```python\n(.*?)```", page, re.S))  # in order
    snippet = snippet.replace('load("school")', f'load("school", root={str(DATA_ROOT)!r})')
    namespace: dict[str, object] = {}
    exec(compile(snippet, "docs/classic.md", "exec"), namespace)
    assert namespace["search"].best_params_["alpha"] in (1e-3, 1e-2, 1e-1)  # type: ignore[attr-defined]
    assert namespace["pipe_search"].best_score_ > 0.2  # type: ignore[attr-defined]
    path = namespace["path"]
    assert path.values_[-1] <= path.best_value_ <= path.values_[0]  # type: ignore[attr-defined]


def test_mtrl_learns_which_tasks_are_related() -> None:
    """Two groups of tasks with opposite weights: the learned task covariance is a valid
    one (symmetric, positive semidefinite, unit trace), positive within a group and
    negative across; Omega is the closed-form minimiser of tr(W^T Omega^-1 W) for the
    final weights; and the solution meets the optimality condition of the objective with
    Omega eliminated, -(grad f + l2 W) / (alpha ||W||_*) in the trace norm's
    subdifferential at W."""
    from polytask.classic.task_covariance import omega_step

    g = np.random.default_rng(10)
    d, m = 4, 60
    base = g.normal(size=d)
    xs, ys, ids = [], [], []
    for t in range(4):
        sign = 1.0 if t < 2 else -1.0
        X = g.normal(size=(m, d))
        xs.append(X)
        ys.append(X @ (sign * base + 0.05 * g.normal(size=d)) + 0.1 * g.normal(size=m))
        ids.append(np.full(m, t))
    alpha, l2 = 0.5, 0.01
    model = RelationshipMTL(alpha=alpha, l2=l2, tol=1e-12, max_iter=200_000).fit(
        np.vstack(xs), np.concatenate(ys), task_ids=np.concatenate(ids)
    )
    omega = model.omega_
    assert np.allclose(omega, omega.T) and np.linalg.eigvalsh(omega)[0] > -1e-10
    assert np.trace(omega) == pytest.approx(1.0)
    assert omega[0, 1] > 0 and omega[2, 3] > 0 and omega[0, 2] < 0 and omega[1, 3] < 0
    assert np.allclose(omega, omega_step(model.coef_, model.eps), atol=1e-6)
    W = model.coef_
    grad = np.stack([
        -(x - x.mean(0)).T @ ((yt - yt.mean()) - (x - x.mean(0)) @ w) / len(yt)
        for x, yt, w in zip(xs, ys, W, strict=True)
    ])  # fmt: skip
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    rank = int((s > 1e-8 * s[0]).sum())
    assert 0 < rank < 4  # opposed groups: the weights are nearly rank one
    M = -(grad + l2 * W) / (alpha * s.sum())
    U, Vt = U[:, :rank], Vt[:rank]
    assert np.allclose(U.T @ M @ Vt.T, np.eye(rank), atol=1e-5)
    assert np.linalg.norm(M - U @ Vt, 2) <= 1 + 1e-6


def test_squared_trace_norm_prox_is_the_proximal_operator() -> None:
    """Against brute force on the singular values (a spectral function's prox acts on
    them) and on a small matrix; the eliminated Omega gives the same objective value."""
    from polytask.classic.mtrl import squared_l1_prox, squared_trace_norm_prox
    from polytask.classic.task_covariance import omega_step

    g = np.random.default_rng(11)
    v, weight = np.abs(g.normal(size=5)), 0.3

    def objective(x: np.ndarray) -> float:
        return 0.5 * weight * float(np.abs(x).sum()) ** 2 + 0.5 * float(np.sum((x - v) ** 2))

    brute = minimize(objective, v, method="Powell", options={"xtol": 1e-12, "ftol": 1e-15})
    assert objective(squared_l1_prox(v, weight)) <= brute.fun + 1e-12
    assert np.allclose(squared_l1_prox(v, weight), brute.x, atol=1e-5)
    V = g.normal(size=(3, 4))

    def matrix_objective(w: np.ndarray) -> float:
        W = w.reshape(V.shape)
        nuclear = float(np.linalg.svd(W, compute_uv=False).sum())
        return 0.5 * weight * nuclear**2 + 0.5 * float(np.sum((W - V) ** 2))

    best = matrix_objective(squared_trace_norm_prox(V, weight).ravel())
    steps = g.normal(size=(500, V.size)) * np.geomspace(1e-6, 1e-1, 500)[:, None]
    assert (
        min(matrix_objective(squared_trace_norm_prox(V, weight).ravel() + d) for d in steps)
        >= best - 1e-12
    )
    omega = omega_step(V, eps=0.0)
    assert np.trace(V.T @ np.linalg.solve(omega, V)) == pytest.approx(
        np.linalg.svd(V, compute_uv=False).sum() ** 2
    )
