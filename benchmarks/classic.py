"""Classic regularised MTL on the School data (139 schools = 139 regression tasks).

Protocol (issue 19): each school's students split at random (``--full``: 10 repetitions at
30% and 75% training; quick: 2 repetitions at 75%), inputs z-scored with the training rows'
statistics over all schools (z-scoring per school would zero the school-level columns), the
regulariser of each estimator chosen by 3-fold cross-validation on the training rows
(folds stratified by school, so every school is in every fold), then refitted. Metric: nMSE
= pooled test MSE / variance of the pooled test targets (lower is better), and explained
variance 1 - nMSE, mean +- 95% CI over repetitions. Solver tolerance 1e-6 (relative change).
Needs the local school copy (``POLYTASK_DATA``).

    python benchmarks/classic.py           # quick: 2 repetitions at 75%
    python benchmarks/classic.py --full
    python benchmarks/classic.py --grid 1,3,10,30,100   # another regularisation grid
Results: benchmarks/results/classic.json and .md
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
from scipy.io import loadmat

from common import markdown_table, meta, write_results
from polytask.classic import (
    IndependentMTL,
    JointFeatureSelectionMTL,
    MeanRegularizedMTL,
    PooledMTL,
    TraceNormMTL,
)
from polytask.data.files import resolve
from polytask.data.school import FILE, FOLDER
from polytask.evaluation.stats import summarize

GRID = [1e-3, 1e-2, 1e-1, 1.0]
ESTIMATORS: dict[str, tuple[Any, str]] = {
    "independent (ridge)": (IndependentMTL, "l2"),
    "pooled (ridge)": (PooledMTL, "l2"),
    "mean-regularised": (MeanRegularizedMTL, "alpha"),
    "l2,1 joint features": (JointFeatureSelectionMTL, "alpha"),
    "trace norm": (TraceNormMTL, "alpha"),
}


def school() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mat = loadmat(resolve(FOLDER, FILE, None))
    xs = [np.asarray(mat["X"][0, t], dtype=np.float64) for t in range(mat["X"].shape[1])]
    ys = [np.asarray(mat["Y"][0, t], dtype=np.float64).ravel() for t in range(mat["Y"].shape[1])]
    ids = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    return np.vstack(xs)[:, :-1], np.concatenate(ys), ids  # the last column is a constant 1


def split(ids: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    train = np.zeros(len(ids), dtype=bool)
    for t in np.unique(ids):
        rows = np.flatnonzero(ids == t)
        train[g.permutation(rows)[: max(3, round(fraction * len(rows)))]] = True
    return train, ~train


def fit_selected(cls: Any, key: str, X: np.ndarray, y: np.ndarray, ids: np.ndarray) -> Any:
    """The estimator refitted with the regulariser that 3-fold CV prefers."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    data = np.column_stack([ids, X])
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(data, ids))
    search = GridSearchCV(
        cls(task_column=0, tol=1e-6, max_iter=20_000), {key: GRID}, cv=folds,
        scoring="neg_mean_squared_error", error_score="raise",
    )  # fmt: skip
    return search.fit(data, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--grid", help="comma-separated regularisation values (default: GRID)")
    args = parser.parse_args()
    if args.grid:
        GRID[:] = [float(v) for v in args.grid.split(",")]
    X, y, ids = school()
    fractions = (0.3, 0.75) if args.full else (0.75,)
    repetitions = range(10) if args.full else range(2)
    rows, table = [], []
    for fraction in fractions:
        for name, (cls, key) in ESTIMATORS.items():
            scores, chosen, seconds = [], [], 0.0
            for rep in repetitions:
                train, test = split(ids, fraction, rep)
                mean, std = X[train].mean(0), X[train].std(0)
                std[std == 0] = 1.0
                Z = (X - mean) / std
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # a solver that does not converge is an error
                    search = fit_selected(cls, key, Z[train], y[train], ids[train])
                seconds += time.perf_counter() - started
                predicted = search.predict(np.column_stack([ids[test], Z[test]]))
                scores.append(float(np.mean((predicted - y[test]) ** 2) / np.var(y[test])))
                chosen.append(search.best_params_[key])
                if chosen[-1] in (min(GRID), max(GRID)):  # the CV may want a wider grid
                    print(f"note: {name} chose {key}={chosen[-1]}, the grid's edge", flush=True)
            summary = summarize(scores)
            rows.append({"fraction": fraction, "estimator": name, "nmse": scores,
                         "chosen": chosen, "seconds": seconds})  # fmt: skip
            explained = summarize([1 - s for s in scores])
            table.append([f"{fraction:.0%}", name, summary.format(3), explained.format(3),
                          f"{seconds / len(repetitions):.1f}"])  # fmt: skip
            print(table[-1], flush=True)
    info = meta("classic.py", repetitions=len(repetitions), grid=list(GRID))
    lines = [
        "# School (139 tasks): classic regularised MTL, nMSE (lower is better)",
        "",
        f"`{info['command']}` on {info['machine']}; {len(repetitions)} repetitions, mean +- "
        "95% CI; regulariser by 3-fold CV on the training rows; seconds per repetition "
        "include the CV grid (4 values x 3 folds + refit).",
        "",
        *markdown_table(
            ["training", "estimator", "nMSE", "explained variance", "s / repetition"], table
        ),
    ]
    write_results("classic", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
