"""A federated run's report (``report.md`` and ``report.html``): for each held-out split
and task, the distribution of the clients' losses (weighted mean, mean, quantiles, bottom
decile, a histogram, the worst clients by name), and the clients' mean training loss per
round. A personalised method is judged by how its worst clients fare, not only by the mean
(Marfoq et al. 2021 report the bottom decile)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polytask.evaluation.report import Report
from polytask.federated.evaluation import ClientScores


def client_distribution(scores: ClientScores, task: str) -> dict[str, float]:
    """:meth:`ClientScores.summary` (its bottom decile is the 90% quantile) with the
    extremes and the 10/25/50/75% quantiles of the clients' losses of ``task``."""
    values = np.array([client[task] for client in scores.losses])
    quantiles = np.percentile(values, [0, 10, 25, 50, 75, 100])
    names = ("min", "q10", "q25", "median", "q75", "max")
    return {**scores.summary(task), **dict(zip(names, quantiles.tolist(), strict=True))}


def histogram(values: Sequence[float], title: str) -> bytes:
    """PNG of a histogram of the clients' losses, the bottom-decile line marked."""
    from polytask.evaluation.plots import _png, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="#4c72b0")
    ax.axvline(float(np.percentile(values, 90)), color="#c44e52", linestyle="--",
               label="bottom decile (90th percentile of loss)")  # fmt: skip
    ax.set_xlabel("client's loss")
    ax.set_ylabel("clients")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def write_report(
    folder: Path,
    config: Any,
    names: Sequence[str],
    scores: dict[str, ClientScores],
    history: Sequence[dict[int, dict[str, float]]],
) -> Report:
    """Write ``report.md`` (figures beside it) and ``report.html`` into ``folder``."""
    report = Report(f"Federated run: {config.algorithm.name} on {config.dataset.name}")
    local, plan = config.local, config.participation
    report.text(
        f"{len(names)} clients ({config.clients.split}), {config.rounds} rounds; each client "
        f"{local.steps} local steps of batch {local.batch_size} at lr {local.lr} "
        f"({local.balancer}, {local.level} level); participation {plan.fraction:g}, "
        f"stragglers {plan.stragglers:g} ({plan.straggler_mode}); seed {config.seed}. Each "
        "client is scored on its own held-out rows with its own model (personalised where "
        "the algorithm personalises)."
    )
    for split, split_scores in scores.items():
        for task in split_scores.losses[0]:
            summary = client_distribution(split_scores, task)
            report.heading(f"{split}: loss of task {task} over clients")
            report.table(list(summary), [[f"{value:.4g}" for value in summary.values()]])
            values = [client[task] for client in split_scores.losses]
            worst = np.argsort([-v for v in values])[:5]
            shown = ", ".join(f"{names[k]} ({values[k]:.4g})" for k in worst)
            report.text(f"Worst clients: {shown}")
            report.figure(
                f"{split}-{task}",
                f"{split} loss of {task} per client",
                functools.partial(histogram, values, f"{split}: {task}"),
            )
    report.heading("Training: the clients' mean local loss per round")
    keys = sorted({key for h in history for c in h.values() for key in c})
    rows = []
    for r, metrics in enumerate(history, 1):
        means = [
            np.mean([c[key] for c in metrics.values() if key in c] or [np.nan]) for key in keys
        ]
        rows.append([r, len(metrics), *(f"{m:.4g}" for m in means)])
    report.table(["round", "clients replying", *keys], rows)
    report.write(folder)
    return report
