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

The solver's speed is measured apart, on a quiet machine: ``benchmarks/classic_speed.py``.

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
    rows, table = accuracy(datasets, repetitions)
    info = meta("classic.py", repetitions=repetitions)
    lines = [
        "# Classic regularised MTL (`polytask.classic`): nMSE (lower is better)",
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
        "Solver speed: [classic_speed.md](classic_speed.md).",
    ]
    write_results("classic", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
