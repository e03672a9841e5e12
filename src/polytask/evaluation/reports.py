"""The reports polytask writes: one training run, one diagnosis, one comparison."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from polytask.evaluation import plots
from polytask.evaluation.diagnosis import Diagnosis, pair_names
from polytask.evaluation.measures import Directions, delta_m, delta_p, relative_changes
from polytask.evaluation.report import Report
from polytask.evaluation.text import number_text


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log (``metrics.jsonl``)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def metric_table(
    metrics: Mapping[str, Mapping[str, float]],
    directions: Directions,
    baselines: Mapping[str, Mapping[str, float]] | None,
) -> tuple[list[str], list[list[str]], str]:
    """Rows ``task, metric, value, baseline, change`` and a sentence with delta-m/delta-p
    (or why they are absent)."""
    headers = ["task", "metric", "higher is better", "test", "single-task", "relative change"]
    changes = None
    note = (
        "No single-task baselines are cached for this configuration, so delta-m is not given; "
        "`polytask compare` trains and caches them."
    )
    if baselines is not None:
        changes = relative_changes(metrics, baselines, directions)
        note = (
            f"delta-m = {delta_m(metrics, baselines, directions):+.2f}% and delta-p = "
            f"{delta_p(metrics, baselines, directions):+.2f}% against single-task baselines "
            "(lower is better; negative means multi-task beats single-task)."
        )
    rows = []
    for task, per in metrics.items():
        for metric, value in per.items():
            base = "" if baselines is None else number_text(baselines[task][metric])
            change = "" if changes is None else f"{100 * changes[task][metric]:+.2f}%"
            up = directions.get(task, {}).get(metric)
            shown = "?" if up is None else ("yes" if up else "no")
            rows.append([task, metric, shown, number_text(value), base, change])
    return headers, rows, note


def run_report(
    run_dir: str | Path,
    directions: Directions,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> Report:
    """The report of one training run from its folder (``metrics.jsonl``, ``results.json``):
    test metrics (with baselines and delta-m when given), loss curves per task, task
    weights over time and the mean gradient-cosine heatmap (Gramian methods)."""
    run_dir = Path(run_dir)
    log = read_log(run_dir / "metrics.jsonl")
    results = json.loads((run_dir / "results.json").read_text())
    start = next((r for r in log if r["kind"] == "start"), {})
    tasks: list[str] = start.get("tasks", list(results["test"]["metrics"]))
    report = Report(f"Run report: {run_dir.name}")
    report.text(
        f"Balancer {start.get('balancer', '?')}, {start.get('parameters', '?')} parameters, "
        f"{results['steps']} steps in {results['seconds']:.1f} s; best epoch "
        f"{results['best_epoch']} chosen on validation; test evaluated once."
    )
    report.heading("Test metrics")
    headers, rows, note = metric_table(results["test"]["metrics"], directions, baselines)
    report.table(headers, rows)
    report.text(note)

    train = [r for r in log if r["kind"] == "train"]
    epochs = [r for r in log if r["kind"] == "epoch" and "val" in r]
    report.heading("Training")
    if train:
        steps = [r["step"] for r in train]
        losses = {t: [r["loss"][t] for r in train] for t in tasks}
        report.figure(
            "loss",
            "Training loss per task",
            lambda: plots.line_plot(
                steps, losses, title="training loss", xlabel="step", ylabel="loss", log_y=True
            ),
        )
        weighted = [r for r in train if "weights" in r]
        if weighted:
            w_steps = [r["step"] for r in weighted]
            weights = {t: [r["weights"][t] for r in weighted] for t in tasks}
            report.figure(
                "weights",
                "Task weights over time (mean over each logging window)",
                lambda: plots.line_plot(
                    w_steps, weights, title="task weights", xlabel="step", ylabel="weight"
                ),
            )
        cosines = [r["cosine"] for r in train if "cosine" in r]
        if cosines:
            mean = np.mean(np.array(cosines), axis=0).tolist()
            report.figure(
                "conflict",
                "Mean cosine between task gradients over the run",
                lambda: plots.heatmap(mean, tasks, title="gradient cosine"),
            )
        else:
            report.text(
                "Gradient cosines are measured by Gramian methods only; run "
                "`polytask diagnose CONFIG` for this balancer's gradient conflict."
            )
    else:
        report.text("No training steps were logged (log_every larger than the run?).")
    if epochs:
        numbers = [r["epoch"] for r in epochs]
        report.figure(
            "validation",
            "Validation loss per task",
            lambda: plots.line_plot(
                numbers,
                {t: [r["val"]["loss"][t] for r in epochs] for t in tasks},
                title="validation loss",
                xlabel="epoch",
                ylabel="loss",
                log_y=True,
            ),
        )
        curves = {  # a panel per task and metric: each on its own scale
            f"{t} {m}": {m: [r["val"]["metrics"][t][m] for r in epochs]}
            for t, metrics in epochs[0]["val"]["metrics"].items()
            for m in metrics
        }
        if curves:
            report.figure(
                "validation-metrics",
                "Validation metrics per task (the model kept is the best epoch's)",
                lambda: plots.panel_plot(
                    numbers, curves, title="validation metrics", xlabel="epoch"
                ),
            )
    if train and "lr" in train[0]:
        groups = {f"group {g}": [r["lr"][g] for r in train] for g in range(len(train[0]["lr"]))}
        report.figure(
            "lr",
            "Learning rate per parameter group",
            lambda: plots.line_plot(
                [r["step"] for r in train], groups, title="learning rate", xlabel="step",
                ylabel="lr",
            ),
        )  # fmt: skip
    report.heading("Configuration")
    config = run_dir / "config.yaml"
    text = config.read_text() if config.is_file() else yaml.safe_dump(start.get("config", {}))
    report.text(f"```yaml\n{text.rstrip()}\n```")
    return report


def diagnosis_report(diagnosis: Diagnosis, title: str = "Seesaw diagnosis") -> Report:
    """The diagnosis with its evidence: cosines over time and on average, loss ratios over
    time, gradient norms over time."""
    report = Report(title)
    report.text(diagnosis.to_markdown())
    steps = list(range(1, diagnosis.steps + 1))
    names = diagnosis.tasks
    report.heading("1. Gradient conflict")
    pairs = {
        f"{names[i]}~{names[j]}": diagnosis.cosines[:, i, j].tolist() for i, j in pair_names(names)
    }
    report.figure(
        "cosine",
        "Cosine between task gradients at every step",
        lambda: plots.line_plot(
            steps, pairs, title="gradient cosine", xlabel="step", ylabel="cosine"
        ),
    )
    report.figure(
        "conflict",
        "Mean gradient cosine per pair of tasks",
        lambda: plots.heatmap(diagnosis.cosines.mean(axis=0).tolist(), names, title="mean cosine"),
    )
    report.heading("2. Convergence speed")
    report.figure(
        "loss-ratio",
        "Loss ratio L(t) / L(0) per task",
        lambda: plots.line_plot(
            steps,
            {n: diagnosis.loss_ratios[:, k].tolist() for k, n in enumerate(names)},
            title="loss ratio",
            xlabel="step",
            ylabel="L(t)/L(0)",
            log_y=True,
        ),
    )
    report.heading("3. Loss and gradient scales")
    rows = [
        [n, f"{diagnosis.losses[0, k]:.4g}", f"{diagnosis.grad_norms[0, k]:.4g}"]
        for k, n in enumerate(names)
    ]
    report.table(["task", "loss at step 1", "gradient norm at step 1"], rows)
    report.figure(
        "gradient-norm",
        "Gradient norm per task",
        lambda: plots.line_plot(
            steps,
            {n: diagnosis.grad_norms[:, k].tolist() for k, n in enumerate(names)},
            title="gradient norm",
            xlabel="step",
            ylabel="||g_t||",
            log_y=True,
        ),
    )
    return report
