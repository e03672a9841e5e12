"""Classic regularised MTL (``polytask.classic``) on per-task data, and its solver's speed.

Accuracy (issue 19's protocol): each task's rows split at random (School: 30% and 75% for
training; Computer survey and Parkinsons per patient: 75%), inputs z-scored with the
training rows' statistics over all tasks (z-scoring per task would zero the task-level
columns), the regulariser chosen by ``ClassicMTLCV`` (3-fold CV on the training rows,
stratified by task, along the default warm-started path of 12 values), then refitted.
Metric: nMSE = pooled test MSE / variance of the pooled test targets (lower is better),
and explained variance 1 - nMSE, mean +- 95% CI over repetitions (``--full``: 10 for
School, 5 for the others; quick: 2 repetitions of School at 75%). Graph-regularised MTL is
left out: these data give no task graph.

Speed: (1) the School l2,1 and trace-norm paths (12 values, each fit warm-started from the
last) against the same 12 fits from zero; (2) on one shared ``X`` (2,000 x 200, 20 tasks)
the time our l2,1 solver needs to reach scikit-learn's ``MultiTaskLasso`` objective (same
alpha, same scaling), as a ratio in the same run (target: <= 1); each the best of 5 timings.

    python benchmarks/classic.py           # quick
    python benchmarks/classic.py --full
Needs the local data copies (``POLYTASK_DATA``). Results: benchmarks/results/classic.json, .md
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from common import markdown_table, meta, write_results
from polytask.classic import METHODS, ClassicMTLCV, long_format
from polytask.classic.base import AllZeroWeightsWarning
from polytask.evaluation.stats import summarize

SKIPPED = {"graph_regularized"}  # needs a task graph the data do not give


def load_rows(name: str, **options: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every labelled row of a per-task data set (all of its splits), in long format."""
    import polytask.data

    data = polytask.data.load(name, **options)
    parts = [long_format(getattr(data, s)) for s in ("train", "val", "test")]
    return tuple(np.concatenate([p[i] for p in parts if len(p[1])]) for i in range(3))  # type: ignore[return-value]


def split(ids: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    train = np.zeros(len(ids), dtype=bool)
    for t in np.unique(ids):
        rows = np.flatnonzero(ids == t)
        train[g.permutation(rows)[: max(3, round(fraction * len(rows)))]] = True
    return train, ~train


def accuracy(datasets: dict[str, Any], repetitions: dict[str, int]) -> tuple[list, list]:
    rows, table = [], []
    for label, (X, y, ids, fractions) in datasets.items():
        for fraction in fractions:
            for name, method in METHODS.items():
                if name in SKIPPED:
                    continue
                scores, chosen, seconds = [], [], 0.0
                for rep in range(repetitions[label]):
                    train, test = split(ids, fraction, rep)
                    mean, std = X[train].mean(0), X[train].std(0)
                    std[std == 0] = 1.0
                    Z = (X - mean) / std
                    estimator = method.load()(tol=1e-6, max_iter=100_000)
                    started = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")  # no convergence: an error here
                        warnings.simplefilter("ignore", AllZeroWeightsWarning)
                        warnings.filterwarnings("always", message="ClassicMTLCV chose")
                        search = ClassicMTLCV(estimator).fit(
                            Z[train], y[train], task_ids=ids[train]
                        )
                    seconds += time.perf_counter() - started
                    predicted = search.predict(Z[test], task_ids=ids[test])
                    scores.append(float(np.mean((predicted - y[test]) ** 2) / np.var(y[test])))
                    chosen.append(search.best_value_)
                summary = summarize(scores)
                rows.append({"data": label, "fraction": fraction, "estimator": name,
                             "nmse": scores, "chosen": chosen, "seconds": seconds})  # fmt: skip
                explained = summarize([1 - s for s in scores])
                table.append([label, f"{fraction:.0%}", name, summary.format(3),
                              explained.format(3), f"{np.median(chosen):.3g}",
                              f"{seconds / len(scores):.1f}"])  # fmt: skip
                print(table[-1], flush=True)
    return rows, table


def best_of(repeats: int, run: Any) -> float:
    """The shortest of ``repeats`` timings of ``run()`` (this machine is shared and noisy)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def path_speed(X: np.ndarray, y: np.ndarray, ids: np.ndarray) -> list[list[str]]:
    """Seconds for a 12-value path warm-started against the same fits from zero."""
    table = []
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    for name in ("joint_feature_selection", "trace_norm"):
        cls = METHODS[name].load()
        probe = cls()
        top, bottom, _ = probe._path_range(probe._training_rows(Z, y, ids))
        values = np.geomspace(top, bottom, 12)
        timings = {}
        for warm in (True, False):
            model = cls(tol=1e-6, max_iter=50_000)
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AllZeroWeightsWarning)
                for value in values:
                    model.set_params(alpha=value)
                    model._warm_start = (
                        model._parameters_ if warm and hasattr(model, "_parameters_") else None
                    )
                    model.fit(Z, y, task_ids=ids)
            timings[warm] = time.perf_counter() - started
        ratio = timings[True] / timings[False]
        table.append([f"School {name} path (12 values)", f"{timings[True]:.2f}",
                      f"{timings[False]:.2f}", f"{ratio:.2f}"])  # fmt: skip
        print(table[-1], flush=True)
    return table


def shared_x_speed() -> list[list[str]]:
    """Time to scikit-learn's MultiTaskLasso objective on one shared X."""
    from sklearn.linear_model import MultiTaskLasso

    from polytask.classic import JointFeatureSelectionMTL

    g = np.random.default_rng(0)
    n, d, T, alpha = 2000, 200, 20, 0.05
    X = g.normal(size=(n, d))
    W = np.zeros((T, d))
    W[:, :20] = g.normal(size=20) + 0.3 * g.normal(size=(T, 20))
    Y = X @ W.T + g.normal(size=(n, T))

    def objective(coef: np.ndarray, intercept: np.ndarray) -> float:
        residual = Y - X @ coef.T - intercept
        return float((residual**2).sum() / (2 * n) + alpha * np.linalg.norm(coef, axis=0).sum())

    sklearn_seconds = best_of(
        5, lambda: MultiTaskLasso(alpha=alpha, tol=1e-6, max_iter=10_000).fit(X, Y)
    )
    reference = MultiTaskLasso(alpha=alpha, tol=1e-6, max_iter=10_000).fit(X, Y)
    target = objective(reference.coef_, reference.intercept_)
    rows, y, ids = np.tile(X, (T, 1)), Y.T.ravel(), np.repeat(np.arange(T), n)
    ours_seconds, ours_value, tol = float("nan"), float("nan"), float("nan")
    for tol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9):
        model = JointFeatureSelectionMTL(alpha=alpha, tol=tol, max_iter=100_000)
        ours_seconds = best_of(5, lambda model=model: model.fit(rows, y, task_ids=ids))
        ours = model
        ours_value = objective(ours.coef_, ours.intercept_)
        if ours_value <= target + 1e-9 * abs(target):
            break
    line = [f"shared X {n} x {d}, {T} tasks: to MultiTaskLasso's objective {target:.6f}",
            f"{ours_seconds:.2f} (tol {tol:g}, objective {ours_value:.6f})",
            f"{sklearn_seconds:.2f}", f"{ours_seconds / sklearn_seconds:.2f}"]  # fmt: skip
    print(line, flush=True)
    return [line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    school = load_rows("school")
    datasets: dict[str, Any] = {"School": (*school, (0.3, 0.75) if args.full else (0.75,))}
    repetitions = {"School": 10 if args.full else 2}
    if args.full:
        datasets["Computer survey"] = (*load_rows("computer_survey"), (0.75,))
        datasets["Parkinsons (per patient)"] = (*load_rows("parkinsons", mode="patients"), (0.75,))
        repetitions.update({"Computer survey": 5, "Parkinsons (per patient)": 5})
    speed = path_speed(*school) + shared_x_speed()
    rows, table = accuracy(datasets, repetitions)
    info = meta("classic.py", repetitions=repetitions)
    lines = [
        "# Classic regularised MTL (`polytask.classic`): nMSE (lower is better) and speed",
        "",
        f"`{info['command']}` on {info['machine']}; mean +- 95% CI over repetitions "
        f"({', '.join(f'{k}: {v}' for k, v in repetitions.items())}); the regulariser by "
        "`ClassicMTLCV` (3-fold CV along the default 12-value warm-started path); seconds per "
        "repetition include the search (3 folds x 12 values + refit).",
        "",
        *markdown_table(
            [
                "data",
                "training",
                "estimator",
                "nMSE",
                "explained variance",
                "chosen (median)",
                "s / repetition",
            ],
            table,
        ),
        "",
        "## Solver speed (seconds, same run)",
        "",
        *markdown_table(["what", "polytask", "reference", "ratio"], speed),
        "",
        "Path rows: the reference is the same 12 fits each started from zero. Shared-X row: "
        "the reference is scikit-learn's `MultiTaskLasso` (coordinate descent, tol 1e-6); "
        "ours is timed at the loosest tolerance whose objective reaches it.",
    ]
    write_results("classic", {"meta": info, "rows": rows, "speed": speed}, lines)


if __name__ == "__main__":
    main()
