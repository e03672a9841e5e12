"""The classic estimators added for structure between tasks (clustered, robust) and the
logistic data term, each against an independent reference: scikit-learn's
LogisticRegression, first-order optimality over the constraint set, subgradient
conditions, and known limits; and the warm-started path search against GridSearchCV."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.linear_model import LogisticRegression

from polytask.classic import (
    ClassicMTLCV,
    ClusteredMTL,
    IndependentMTL,
    IndependentMTLClassifier,
    JointFeatureSelectionMTL,
    JointFeatureSelectionMTLClassifier,
    PooledMTLClassifier,
    RobustMTL,
)
from polytask.classic.base import AllZeroWeightsWarning
from polytask.classic.clustered import capped_eigenvalues, cluster_structure_step


def logistic_tasks(T: int = 3, m: int = 80, d: int = 4, seed: int = 0):
    g = np.random.default_rng(seed)
    X = g.normal(size=(T * m, d))
    ids = np.repeat(np.arange(T), m)
    W = g.normal(size=d) + 0.5 * g.normal(size=(T, d))
    score = np.einsum("nd,nd->n", X, W[ids]) + 0.5 + g.normal(size=T * m)
    return X, (score > 0).astype(int), ids


def test_independent_logistic_equals_scikit_learns_logistic_regression_per_task() -> None:
    """Ours per task: (1/m) sum log-loss + l2 ||w||^2; scikit-learn's: C sum log-loss +
    ||w||^2 / 2, so C = 1 / (2 m l2); both leave the intercept unpenalised."""
    X, y, ids = logistic_tasks()
    l2, m = 0.05, 80
    ours = IndependentMTLClassifier(l2=l2, tol=1e-12, max_iter=100_000).fit(X, y, task_ids=ids)
    for t in range(3):
        rows = ids == t
        ref = LogisticRegression(C=1 / (2 * m * l2), tol=1e-12, max_iter=10_000)
        ref.fit(X[rows], y[rows])
        assert np.allclose(ours.coef_[t], ref.coef_[0], atol=1e-6)
        assert ours.intercept_[t] == pytest.approx(ref.intercept_[0], abs=1e-6)
    proba = ours.predict_proba(X, task_ids=ids)
    assert np.allclose(proba.sum(1), 1) and set(ours.predict(X, task_ids=ids)) <= {0, 1}


def test_pooled_logistic_without_intercepts_is_one_logistic_regression() -> None:
    X, y, ids = logistic_tasks(seed=1)
    l2, m = 0.02, 80
    ours = PooledMTLClassifier(l2=l2, fit_intercept=False, tol=1e-12, max_iter=100_000)
    ours.fit(X, y, task_ids=ids)
    # Equal m_t: the per-task means sum to (1/m) sum over all rows, and the ridge
    # l2 ||W||_F^2 on T equal rows is T l2 ||w||^2, so C = 1 / (2 m T l2).
    C = 1 / (2 * m * 3 * l2)
    ref = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(X, y)
    assert np.allclose(ours.coef_, ref.coef_[0][None, :], atol=1e-6)


def test_logistic_l21_meets_its_optimality_conditions() -> None:
    """Gradient G of the data term at the solution: G_j = -alpha w_j / ||w_j|| for a used
    feature j, ||G_j|| <= alpha for an unused one; the intercepts' gradient is 0."""
    X, y, ids = logistic_tasks(d=6, seed=2)
    X[:, -2:] *= 0.05  # weak features the penalty removes
    alpha = 0.03
    model = JointFeatureSelectionMTLClassifier(alpha=alpha, tol=1e-12, max_iter=200_000)
    model.fit(X, y, task_ids=ids)
    s = 2.0 * y - 1
    z = np.einsum("nd,nd->n", X, model.coef_[ids]) + model.intercept_[ids]
    per_row = -s / (1 + np.exp(s * z)) / 80  # d/dz of (1/m_t) log(1 + exp(-s z))
    G = np.stack([X[ids == t].T @ per_row[ids == t] for t in range(3)])
    assert np.allclose([per_row[ids == t].sum() for t in range(3)], 0, atol=1e-7)
    norms = np.linalg.norm(model.coef_, axis=0)
    used = norms > 0
    assert 0 < used.sum() < 6
    assert np.allclose(G[:, used], -alpha * model.coef_[:, used] / norms[used], atol=1e-6)
    assert np.all(np.linalg.norm(G[:, ~used], axis=0) <= alpha + 1e-7)


def test_capped_eigenvalues_meet_their_kkt_conditions() -> None:
    g = np.random.default_rng(3)
    sigma, eta, k = np.abs(g.normal(size=7)), 0.3, 2.5
    gamma = capped_eigenvalues(sigma, eta, k)
    assert gamma.sum() == pytest.approx(k) and np.all((gamma >= 0) & (gamma <= 1))
    slope = sigma**2 / (eta + gamma) ** 2  # minus the objective's derivative
    inner = (gamma > 1e-9) & (gamma < 1 - 1e-9)
    assert np.ptp(slope[inner]) < 1e-6 * slope[inner].max()  # equal on the free ones
    assert slope[gamma >= 1 - 1e-9].min() >= slope[inner].max() - 1e-9
    assert slope[gamma <= 1e-9].max(initial=0) <= slope[inner].min() + 1e-9


def test_cluster_structure_step_minimises_over_the_relaxed_set() -> None:
    """The objective f(M) = tr(W^T (eta I + M)^-1 W) is convex on the convex set
    {0 <= M <= I, tr M = k}: M* is its minimiser exactly when the directional derivative
    towards every other feasible M is >= 0; checked against random feasible points."""
    g = np.random.default_rng(4)
    T, eta, k = 5, 0.2, 2
    W = g.normal(size=(T, 3))
    M = cluster_structure_step(W, eta, k)
    eigen = np.linalg.eigvalsh(M)
    assert np.trace(M) == pytest.approx(k) and eigen.min() > -1e-10 and eigen.max() < 1 + 1e-10
    inverse = np.linalg.inv(eta * np.eye(T) + M)
    gradient = -inverse @ W @ W.T @ inverse

    def f(M: np.ndarray) -> float:
        return float(np.trace(W.T @ np.linalg.solve(eta * np.eye(T) + M, W)))

    for _ in range(300):
        Q = np.linalg.qr(g.normal(size=(T, T)))[0]
        other = (Q * capped_eigenvalues(np.abs(g.normal(size=T)), 0.0, k)) @ Q.T
        assert np.sum(gradient * (other - M)) >= -1e-9
        assert f(other) >= f(M) - 1e-9


def test_clustered_with_one_cluster_per_task_is_ridge_per_task() -> None:
    """n_clusters = T forces M = I: the penalty becomes alpha eta ||W||^2 = l2 ||W||^2."""
    g = np.random.default_rng(5)
    X, ids = g.normal(size=(120, 3)), np.repeat(np.arange(3), 40)
    y = X @ g.normal(size=3) + g.normal(size=120)
    clustered = ClusteredMTL(alpha=0.7, l2=0.2, n_clusters=3, tol=1e-12, max_iter=100_000)
    ridge = IndependentMTL(l2=0.2, tol=1e-12, max_iter=100_000)
    assert np.allclose(
        clustered.fit(X, y, task_ids=ids).coef_, ridge.fit(X, y, task_ids=ids).coef_, atol=1e-8
    )
    with pytest.warns(UserWarning, match="n_clusters=4 but the data have 3 task"):
        ClusteredMTL(n_clusters=4).fit(X, y, task_ids=ids)


def test_clustered_finds_two_groups_of_tasks() -> None:
    """Six tasks around two weight vectors: the learned structure's two leading
    eigenvectors span the groups' indicators, and its objective never rises."""
    g = np.random.default_rng(6)
    d, m = 5, 60
    centres = g.normal(size=(2, d))
    xs, ys = [], []
    for t in range(6):
        w = centres[t // 3] + 0.1 * g.normal(size=d)
        X = g.normal(size=(m, d))
        xs.append(X)
        ys.append(X @ w + 0.3 * g.normal(size=m))
    ids = np.repeat(np.arange(6), m)
    model = ClusteredMTL(alpha=1.0, l2=0.01, n_clusters=2, tol=1e-9, max_iter=50_000)
    model.fit(np.vstack(xs), np.concatenate(ys), task_ids=ids)
    _, vectors = np.linalg.eigh(model.cluster_structure_)
    top = vectors[:, -2:]
    for group in (np.r_[np.ones(3), np.zeros(3)], np.r_[np.zeros(3), np.ones(3)]):
        group /= np.linalg.norm(group)
        assert np.linalg.norm(group - top @ (top.T @ group)) < 0.15  # noise 0.1 in w
    assert all(b <= a + 1e-9 for a, b in zip(model.objective_, model.objective_[1:], strict=False))


def test_robust_mtl_finds_the_outlier_task_and_meets_its_optimality_conditions() -> None:
    """Five tasks on one shared weight vector and one that is not: S is non-zero on the
    outlier only; the data gradient G satisfies -G / alpha in the trace norm's
    subdifferential at L and -G_t = beta s_t / ||s_t|| (or ||G_t|| <= beta) for S."""
    g = np.random.default_rng(7)
    d, m = 4, 80
    shared = g.normal(size=d)
    xs, ys = [], []
    for t in range(6):
        w = g.normal(size=d) * 3 if t == 4 else shared
        X = g.normal(size=(m, d))
        xs.append(X)
        ys.append(X @ w + 0.1 * g.normal(size=m))
    X, y, ids = np.vstack(xs), np.concatenate(ys), np.repeat(np.arange(6), m)
    alpha, beta = 1.0, 0.5
    model = RobustMTL(alpha=alpha, beta=beta, tol=1e-12, max_iter=200_000).fit(X, y, task_ids=ids)
    assert model.outlier_tasks_.tolist() == [4]
    assert np.allclose(model.coef_, model.low_rank_ + model.outliers_)
    G = np.stack([
        -(x - x.mean(0)).T @ ((yt - yt.mean()) - (x - x.mean(0)) @ w) / m
        for x, yt, w in zip(xs, ys, model.coef_, strict=True)
    ])  # fmt: skip
    s_norms = np.linalg.norm(model.outliers_, axis=1)
    on = s_norms > 0
    assert np.allclose(-G[on], beta * model.outliers_[on] / s_norms[on, None], atol=1e-6)
    assert np.all(np.linalg.norm(G[~on], axis=1) <= beta + 1e-7)
    U, sv, Vt = np.linalg.svd(model.low_rank_, full_matrices=False)
    rank = int((sv > 1e-8 * sv[0]).sum())
    assert rank == 1
    M = -G / alpha
    assert np.allclose(U[:, :rank].T @ M @ Vt[:rank].T, np.eye(rank), atol=1e-5)
    assert np.linalg.norm(M - U[:, :rank] @ Vt[:rank], 2) <= 1 + 1e-6


def test_path_search_chooses_as_grid_search_with_the_same_folds() -> None:
    """ClassicMTLCV's warm-started path gives GridSearchCV's fold scores (each a cold
    fit) and the same choice; its refit is the chosen estimator; task ids work as a task
    column does."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    g = np.random.default_rng(8)
    X, ids = g.normal(size=(240, 8)), np.repeat(np.arange(4), 60)
    W = np.zeros((4, 8))
    W[:, :3] = g.normal(size=3) + 0.3 * g.normal(size=(4, 3))
    y = np.einsum("nd,nd->n", X, W[ids]) + g.normal(size=240)
    data = np.column_stack([ids, X])
    values = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(data, ids))
    estimator = JointFeatureSelectionMTL(task_column=0, tol=1e-10, max_iter=100_000)
    path = ClassicMTLCV(estimator, values=values, cv=folds).fit(data, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllZeroWeightsWarning)
        grid = GridSearchCV(estimator, {"alpha": values}, cv=folds,
                            scoring="neg_mean_squared_error").fit(data, y)  # fmt: skip
    for i in range(3):
        assert np.allclose(path.cv_scores_[i], grid.cv_results_[f"split{i}_test_score"], atol=1e-6)
    assert path.best_value_ == grid.best_params_["alpha"]
    assert np.allclose(path.best_estimator_.coef_, grid.best_estimator_.coef_, atol=1e-6)
    by_ids = ClassicMTLCV(JointFeatureSelectionMTL(tol=1e-10, max_iter=100_000), values=values)
    by_ids.fit(X, y, task_ids=ids)
    assert by_ids.best_value_ == path.best_value_  # default folds: the same stratified ones
    assert np.allclose(by_ids.predict(X, task_ids=ids), path.predict(data), atol=1e-6)


def test_path_default_top_is_exact_and_a_choice_at_its_end_warns() -> None:
    g = np.random.default_rng(9)
    X, ids = g.normal(size=(150, 5)), np.repeat(np.arange(3), 50)
    y = X @ np.array([1.0, -1.0, 0.5, 0.0, 0.0]) + 0.1 * g.normal(size=150)
    search = ClassicMTLCV(JointFeatureSelectionMTL(tol=1e-9), n_values=5, eps=1e-2)
    with pytest.warns(UserWarning, match=r"the edge of the path .*values=\["):
        search.fit(X, y, task_ids=ids)  # little noise: the smallest alpha wins
    top = search.values_[0]
    with pytest.warns(AllZeroWeightsWarning, match="every weight is 0"):
        at_top = JointFeatureSelectionMTL(alpha=top * 1.0001).fit(X, y, task_ids=ids)
    assert not np.any(at_top.coef_)
    below = JointFeatureSelectionMTL(alpha=top * 0.99).fit(X, y, task_ids=ids)
    assert np.any(below.coef_)
    from sklearn.linear_model import Lasso

    with pytest.raises(ValueError, match=r"takes a polytask\.classic estimator, not Lasso"):
        ClassicMTLCV(Lasso()).fit(X, y)
    with pytest.raises(ValueError, match="has no parameter 'gamma'"):
        ClassicMTLCV(JointFeatureSelectionMTL(), parameter="gamma").fit(X, y, task_ids=ids)
    few = np.r_[ids[:148], [7, 7]]
    with pytest.raises(ValueError, match="a task has 2 labelled row"):
        ClassicMTLCV(JointFeatureSelectionMTL()).fit(X, y, task_ids=few)


def test_the_gram_form_of_the_squared_loss_equals_the_row_form() -> None:
    """Per-task Gram matrices (used when T d^2 < n d) give the rows' value and gradient."""
    from polytask.classic.losses import SquaredLoss, TaskRows

    g = np.random.default_rng(12)
    X, y, codes = g.normal(size=(90, 4)), g.normal(size=90), np.repeat(np.arange(3), 30)
    loss = SquaredLoss(TaskRows.sort(X, y, codes, 3), fit_intercept=True)
    assert loss.gram is not None
    W = g.normal(size=(3, 4))
    gram_value, gram_gradient = loss.value(W, None), loss.gradient(W, None)[0]
    loss.gram = None  # the row form
    assert gram_value == pytest.approx(loss.value(W, None), rel=1e-12)
    assert np.allclose(gram_gradient, loss.gradient(W, None)[0], atol=1e-12)


def test_a_pipeline_with_a_task_column_scales_features_only() -> None:
    """Pipeline(ColumnTransformer(task passthrough, scaler), estimator) inside GridSearchCV
    gives what scaling by hand and fitting gives."""
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g = np.random.default_rng(13)
    X, ids = 5 + 3 * g.normal(size=(180, 4)), np.repeat(np.arange(3), 60)
    y = X @ np.array([1.0, -2.0, 0.0, 0.5]) + ids + g.normal(size=180)
    rows = np.column_stack([ids, X])
    features = ColumnTransformer([("task", "passthrough", [0])], remainder=StandardScaler())
    pipe = make_pipeline(features, JointFeatureSelectionMTL(task_column=0, tol=1e-10))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(rows, ids))
    search = GridSearchCV(pipe, {"jointfeatureselectionmtl__alpha": [0.01, 0.1]}, cv=folds)
    search.fit(rows, y)
    alpha = search.best_params_["jointfeatureselectionmtl__alpha"]
    Z = StandardScaler().fit_transform(X)
    by_hand = JointFeatureSelectionMTL(alpha=alpha, tol=1e-10).fit(Z, y, task_ids=ids)
    assert np.allclose(search.predict(rows), by_hand.predict(Z, task_ids=ids), atol=1e-6)


def test_mean_regularized_closed_form_is_optimal_on_collinear_inputs() -> None:
    """Squared loss: the closed-form solution zeroes the objective's gradient (computed here
    from the rows) even where inputs are nearly collinear and alpha is large, the case in
    which the accelerated gradient did not converge (Parkinson's voice measures)."""
    from polytask.classic import MeanRegularizedMTL

    g = np.random.default_rng(14)
    base = g.normal(size=(200, 1))
    X = np.hstack([base, base + 1e-4 * g.normal(size=(200, 1)), g.normal(size=(200, 2))])
    ids = np.repeat(np.arange(4), 50)
    y = X @ np.array([1.0, 1.0, 0.5, -0.5]) + ids + 0.1 * g.normal(size=200)
    alpha, l2 = 50.0, 0.0
    model = MeanRegularizedMTL(alpha=alpha, l2=l2).fit(X, y, task_ids=ids)
    W = model.coef_
    grad = []
    for t in range(4):
        Xt, yt = X[ids == t], y[ids == t]
        Xc, yc = Xt - Xt.mean(0), yt - yt.mean()
        grad.append(Xc.T @ (Xc @ W[t] - yc) / len(yt) + 2 * alpha * (W[t] - W.mean(0)))
    assert np.abs(np.array(grad)).max() < 1e-9
    assert model.n_iter_ == 1


def test_path_search_leaves_rows_without_a_label_out_of_its_folds() -> None:
    """A NaN target is a missing label for the estimators; the path search must not score
    it either (a NaN fold score made argmax pick the path's first value)."""
    g = np.random.default_rng(15)
    X, ids = g.normal(size=(240, 5)), np.repeat(np.arange(4), 60)
    y = X @ np.array([1.0, -1.0, 0.5, 0.0, 0.0]) + 0.5 * g.normal(size=240)
    values = [1.0, 0.1, 0.01]
    complete = ClassicMTLCV(JointFeatureSelectionMTL(tol=1e-9), values=values).fit(
        X, y, task_ids=ids
    )
    missing = y.copy()
    missing[::10] = np.nan
    search = ClassicMTLCV(JointFeatureSelectionMTL(tol=1e-9), values=values)
    search.fit(X, missing, task_ids=ids)
    assert np.all(np.isfinite(search.cv_scores_))
    assert search.best_value_ == complete.best_value_ != values[0]
