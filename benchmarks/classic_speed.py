"""The speed of ``polytask.classic``'s solvers, as ratios against references timed in the
same run (the best of 3 timings for a path, of 5 for a fit; this machine is shared and
noisy):

1. the School l2,1 and trace-norm regularisation paths (12 values, each fit warm-started
   from the last, as ``ClassicMTLCV`` fits them) against the same 12 fits from zero;
2. on one shared ``X`` (2,000 x 200, 20 tasks), the time our l2,1 solver needs to reach
   scikit-learn's ``MultiTaskLasso`` objective (same alpha, same scaling; target: <= 1).

    python benchmarks/classic_speed.py [--full]   # the same measurement; --full commits it
Needs the local School copy (``POLYTASK_DATA``). Results: benchmarks/results/classic_speed.*
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from classic import load_rows
from common import markdown_table, meta, write_results
from polytask.classic import METHODS
from polytask.classic.base import AllZeroWeightsWarning


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

            def path(warm: bool = warm, cls: Any = cls, values: np.ndarray = values) -> None:
                model = cls(tol=1e-6, max_iter=50_000)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AllZeroWeightsWarning)
                    for value in values:
                        model.set_params(alpha=value)
                        model._warm_start = getattr(model, "_parameters_", None) if warm else None
                        model.fit(Z, y, task_ids=ids)

            timings[warm] = best_of(3, path)
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
    parser.parse_args()
    rows = path_speed(*load_rows("school")) + shared_x_speed()
    info = meta("classic_speed.py")
    lines = [
        "# Classic regularised MTL (`polytask.classic`): solver speed",
        "",
        f"`{info['command']}` on {info['machine']}; seconds, the best of 3 timings (paths) "
        "or 5 (fits) in one run.",
        "",
        *markdown_table(["what", "polytask", "reference", "ratio"], rows),
        "",
        "Path rows: the reference is the same 12 fits, each started from zero. Shared-X row: "
        "the reference is scikit-learn's `MultiTaskLasso` (coordinate descent, tol 1e-6); "
        "ours is timed at the loosest tolerance whose objective reaches it.",
    ]
    write_results("classic_speed", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
