"""Plots as PNG bytes (matplotlib is an optional extra: ``pip install 'polytask[plots]'``)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

PLOTS_HINT = "plots need matplotlib: pip install 'polytask[plots]'"


class MissingPlottingError(ImportError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise MissingPlottingError(PLOTS_HINT) from error
    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
) -> bytes:
    """One line per series (for example one task's loss over steps); with few points each
    point is marked too (a one-epoch run's single point is otherwise invisible)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in series.items():
        marker = "o" if len(values) <= 20 else None
        ax.plot(list(x)[: len(values)], list(values), label=name, marker=marker)
    if log_y:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def heatmap(matrix: Sequence[Sequence[float]], labels: Sequence[str], *, title: str) -> bytes:
    """A square matrix in [-1, 1] (gradient cosines), values written in the cells."""
    plt = _pyplot()
    size = max(3.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(matrix, cmap="RdBu", vmin=-1, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return _png(fig)


def pareto_plot(
    points: Sequence[tuple[float, float]],
    labels: Sequence[str],
    front: Sequence[int],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    points_label: str = "runs",
) -> bytes:
    """Every run (or what ``points_label`` names) as a labelled point, the non-dominated ones
    joined as the front."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.scatter(xs, ys, color="0.6", label=points_label)
    on_front = sorted((points[i] for i in front), key=lambda p: p[0])
    ax.plot(
        [p[0] for p in on_front], [p[1] for p in on_front], "o-", color="C3", label="Pareto front"
    )
    for (x, y), label in zip(points, labels, strict=True):
        ax.annotate(label, (x, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)
