"""Small regression tables, no tuning: polytask's ``table`` defaults against a plain
multi-output MLP trained with sensible settings (scikit-learn), and against the old defaults.

The issue-21 check. Raw target units made equal weighting worse than predicting the mean and
MGDA far worse; 10 epochs of 256 rows left a 200-row table barely trained. Each table goes
through the ``table`` data set exactly as a user's CSV would (a YAML-equivalent configuration,
shared bottom 64-32 with heads of 16, Adam 1e-3) and the score is the test MSE over the test
MSE of the training-mean predictor, per task, averaged over tasks (1.0 = no better than the
mean; lower is better), mean +- 95% CI over seeds (a seed draws the split and the
initialisation).

- ``polytask <balancer>``: the defaults (targets standardised on training rows and reported in
  their units, the schedule sized by the rows).
- ``... raw targets``: ``scale_targets: false``; ``old defaults``: raw targets and 10 epochs of
  256 rows, what a user got before.
- ``sklearn MLP``: ``MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=2000)`` with
  standardised targets (``TransformedTargetRegressor``) on the same encoded inputs and the
  same rows (training and validation rows, labelled on every task), scikit-learn's own
  stopping rule.

Tables: ``linnerud`` (scikit-learn, 20 rows: weight, waist, pulse), ``houses`` (the shipped
example, 400 rows: price ~3e5, days on market ~40), ``energy`` (UCI energy efficiency, 768
rows: heating and cooling load; needs ``POLYTASK_DATA``) and ``energy_mixed_units`` (the
same with cooling load in Wh/m2 instead of kWh/m2).

    python benchmarks/small_tables.py           # 3 seeds, equal and mgda
    python benchmarks/small_tables.py --full    # 10 seeds, and gradient_norm
Results: benchmarks/results/small_tables.json and .md
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import polytask.data
from common import markdown_table, meta, write_results
from polytask.evaluation.stats import summarize
from polytask.training.experiment import ExperimentConfig, run_experiment

HERE = Path(__file__).parent
MODEL = {"name": "shared_bottom", "options": {"trunk_dims": [64, 32], "head_dims": [16]}}


def _write(path: Path, columns: dict[str, list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))
    return path


def linnerud(folder: Path) -> tuple[Path, list[str]]:
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    columns = {n: bunch.data[:, j].tolist() for j, n in enumerate(bunch.feature_names)}
    columns.update({n: bunch.target[:, j].tolist() for j, n in enumerate(bunch.target_names)})
    return _write(folder / "linnerud.csv", columns), list(bunch.target_names)


def houses(folder: Path) -> tuple[Path, list[str]]:
    source = HERE.parent / "examples" / "table" / "houses.csv"
    with source.open() as handle:
        rows = list(csv.DictReader(handle))
    keep = [c for c in rows[0] if c not in ("sold_above_ask", "energy_class")]
    columns = {c: [r[c] for r in rows] for c in keep}
    return _write(folder / "houses.csv", columns), ["price", "days_on_market"]


def _energy_rows() -> list[list[str]]:
    from polytask.data.energy_efficiency import FILE, FOLDER, read_first_sheet
    from polytask.data.files import resolve

    return read_first_sheet(resolve(FOLDER, FILE, None))


def energy(
    folder: Path, cooling_factor: float = 1.0, name: str = "energy"
) -> tuple[Path, list[str]]:
    rows = _energy_rows()
    body = [[float(v) for v in r[:10]] for r in rows[1:]]
    names = [f"x{i}" for i in range(1, 9)] + ["heating_load", "cooling_load"]
    columns = {n: [r[j] for r in body] for j, n in enumerate(names)}
    columns["cooling_load"] = [v * cooling_factor for v in columns["cooling_load"]]
    return _write(folder / f"{name}.csv", columns), ["heating_load", "cooling_load"]


def table_options(path: Path, targets: list[str], seed: int, **extra: Any) -> dict[str, Any]:
    return {"source": str(path), "tasks": dict.fromkeys(targets, "mse"), "seed": seed, **extra}


def normalised(
    test: dict[str, torch.Tensor], predictions: dict[str, np.ndarray], train_mean: dict[str, float]
) -> float:
    """Mean over tasks of test MSE / test MSE of the training-mean predictor."""
    ratios = []
    for task, target in test.items():
        keep = ~torch.isnan(target)
        y = target[keep].double().numpy()
        mse = float(np.mean((predictions[task][keep.numpy()] - y) ** 2))
        ratios.append(mse / float(np.mean((train_mean[task] - y) ** 2)))
    return statistics.mean(ratios)


def polytask_score(path: Path, targets: list[str], seed: int, balancer: str, **extra: Any) -> float:
    """Train through the table data set as a user's configuration would; the normalised test
    MSE of the selected model (metrics are in the targets' units)."""
    schedule = extra.pop("schedule", {})
    config = ExperimentConfig.from_dict({
        "dataset": {"name": "table", "options": table_options(path, targets, seed, **extra)},
        "model": MODEL, "balancer": {"name": balancer}, "seed": seed, "schedule": schedule,
        "report": False, "progress": False,
    })  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the raw-units warning is the point of those rows
        result = run_experiment(config)
    data = _data(path, targets, seed)
    ratios = []
    for task in targets:
        y = data.test.targets[task]
        y = y[~torch.isnan(y)].double()
        mean = float(np.nanmean(data.train.targets[task].double().numpy()))
        ratios.append(result.test["metrics"][task]["mse"] / float(((y - mean) ** 2).mean()))
    return statistics.mean(ratios)


def _data(path: Path, targets: list[str], seed: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return polytask.data.load("table", **table_options(path, targets, seed))


def sklearn_score(path: Path, targets: list[str], seed: int) -> float:
    """A plain multi-output MLP (scikit-learn) on the same encoded inputs and rows."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPRegressor

    data = _data(path, targets, seed)
    x = torch.cat([data.train.inputs, data.val.inputs]).numpy()
    y = torch.stack([torch.cat([data.train.targets[t], data.val.targets[t]]) for t in targets], 1)
    labelled = ~torch.isnan(y).any(1)
    model = TransformedTargetRegressor(
        MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=2000, random_state=seed),
        transformer=__import__("sklearn.preprocessing").preprocessing.StandardScaler(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on the 20-row table
        model.fit(x[labelled.numpy()], y[labelled].numpy())
    predicted = model.predict(data.test.inputs.numpy()).reshape(len(data.test), len(targets))
    train_mean = {t: float(np.nanmean(data.train.targets[t].numpy())) for t in targets}
    return normalised(
        {t: data.test.targets[t] for t in targets},
        {t: predicted[:, j] for j, t in enumerate(targets)},
        train_mean,
    )


def methods(balancers: tuple[str, ...]) -> dict[str, Callable[[Path, list[str], int], float]]:
    made: dict[str, Callable[[Path, list[str], int], float]] = {}
    for b in balancers:
        made[f"polytask {b}"] = lambda p, t, s, b=b: polytask_score(p, t, s, b)
    for b in ("equal", "mgda"):
        made[f"polytask {b}, raw targets"] = lambda p, t, s, b=b: polytask_score(
            p, t, s, b, scale_targets=False
        )
    made["polytask equal, old defaults"] = lambda p, t, s: polytask_score(
        p, t, s, "equal", scale_targets=False, schedule={"epochs": 10, "batch_size": 256}
    )
    made["sklearn MLP"] = sklearn_score
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    seeds = range(10) if args.full else range(3)
    balancers = ("equal", "mgda", "gradient_norm") if args.full else ("equal", "mgda")
    folder = Path(tempfile.mkdtemp(prefix="small_tables-"))
    tables = {"linnerud": linnerud(folder), "houses": houses(folder)}
    try:
        tables["energy"] = energy(folder)
        tables["energy_mixed_units"] = energy(folder, 1000.0, "energy_mixed_units")
    except Exception as error:  # the local copy is optional; say what was left out
        print(f"energy tables skipped: {error}")
    chosen = methods(balancers)
    rows, scores = [], {}
    for table, (path, targets) in tables.items():
        for method, score in chosen.items():
            started = time.perf_counter()
            values = [score(path, targets, seed) for seed in seeds]
            summary = summarize(values)
            scores[(table, method)] = summary
            rows.append({"table": table, "method": method, "scores": values,
                         "mean": summary.mean, "half_width": summary.half_width,
                         "seconds": time.perf_counter() - started})  # fmt: skip
            print(table, method, summary.format(3), flush=True)
    info = meta("small_tables.py", seeds=len(seeds))
    header = ["method", *tables]
    table_rows = [[method, *(scores[(t, method)].format(3) for t in tables)] for method in chosen]
    lines = [
        "# Small tables: test MSE / mean-predictor MSE (mean over tasks; lower is better)",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, 2 threads, "
        f"{len(seeds)} seeds (mean +- 95% CI). 1.0 is the training mean's error.",
        "",
        *markdown_table(header, table_rows),
    ]
    write_results("small_tables", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
