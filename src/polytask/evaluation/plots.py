"""Plots as PNG bytes (matplotlib is an optional extra: ``pip install 'polytask[plots]'``)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def series_styles(n: int) -> list[dict[str, Any]]:
    """A distinct (line style, marker) for each of ``n`` series, so lines drawn on top of
    each other (equal weighting's identical weights) all stay visible."""
    return [
        {"linestyle": LINESTYLES[i % len(LINESTYLES)], "marker": MARKERS[i % len(MARKERS)]}
        for i in range(n)
    ]


def _draw_series(ax: Any, x: Sequence[float], series: Mapping[str, Sequence[float]]) -> None:
    """Each series in its own style (:func:`series_styles`), markers every few points and
    staggered between series, so equal series show every marker side by side."""
    for i, ((name, values), style) in enumerate(
        zip(series.items(), series_styles(len(series)), strict=True)
    ):
        every = max(1, len(values) // 12)
        start = (i * every) // max(len(series), 1)
        ax.plot(list(x)[: len(values)], list(values), label=name, markevery=(start, every), **style)


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
) -> bytes:
    """One line per series (for example one task's loss over steps), each in its own line
    style and marker (:func:`series_styles`), markers every few points and staggered
    between series: a one-point run shows, and equal lines drawn on each other stay apart."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    _draw_series(ax, x, series)
    if log_y:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def panel_plot(
    x: Sequence[float],
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    title: str,
    xlabel: str,
) -> bytes:
    """One small panel per group (for example per task: its metrics over epochs), each with
    its own y scale, so an MSE in squared currency and an AUC are both readable."""
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.4 * rows), squeeze=False)
    for ax, (name, series) in zip(axes.flat, panels.items(), strict=False):
        _draw_series(ax, x, series)
        ax.set_title(name, fontsize="small")
        ax.set_xlabel(xlabel, fontsize="small")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
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


@dataclass
class MethodPoints:
    """One method on a Pareto plot: its mean, the half-widths of its confidence intervals
    (NaN with one seed) and its single-seed points."""

    label: str
    mean: tuple[float, float]
    half_width: tuple[float, float]
    seeds: Sequence[tuple[float, float]]


def pareto_plot(
    methods: Sequence[MethodPoints],
    front: Sequence[int],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> bytes:
    """Each method's mean with error bars in its own colour and marker, its seeds faint
    beside it, and the methods on the ``front`` joined. Names go in the legend, so they
    never overlap however close the points are."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (m, style) in enumerate(zip(methods, series_styles(len(methods)), strict=True)):
        color = f"C{i % 10}"
        ax.scatter([p[0] for p in m.seeds], [p[1] for p in m.seeds], color=color, alpha=0.25,
                   marker=style["marker"], s=18)  # fmt: skip
        xerr, yerr = (None if math.isnan(h) else h for h in m.half_width)
        ax.errorbar(*m.mean, xerr=xerr, yerr=yerr, color=color, marker=style["marker"],
                    markersize=7, capsize=3, linestyle="none", label=m.label)  # fmt: skip
    on_front = sorted((methods[i].mean for i in front), key=lambda p: p[0])
    ax.plot([p[0] for p in on_front], [p[1] for p in on_front], "-", color="0.3", zorder=0,
            label="Pareto front (means)")  # fmt: skip
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # off the data
    return _png(fig)
