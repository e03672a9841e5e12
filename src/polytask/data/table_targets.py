"""The tasks of a user's table: which columns are targets, their losses, and their cells
parsed as labels (``0/1`` for ``bce``, class codes for ``ce``, numbers for regression)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polytask.data.table_source import TableError, is_missing, numbers, sorted_values
from polytask.tasks.losses import Kind, get_loss

DEFAULT_METRICS: dict[Kind, tuple[str, ...]] = {
    "binary": ("auc", "accuracy"),
    "multiclass": ("accuracy",),
    "regression": ("mse", "mae"),
}
"""Metrics of a table task that names none, by kind (the first selects models when the
monitor is that task's metric)."""


@dataclass
class TargetSpec:
    """How one target column becomes a task (a value of the ``tasks:`` mapping).

    Attributes:
        column: the target column (the task's name, unless the table is per-task data).
        loss: ``bce``, ``ce``, ``mse``, ``l1`` or ``huber``.
        metrics: metric names (default by kind, :data:`DEFAULT_METRICS`).
        role, weight: as on :class:`~polytask.tasks.Task`.
        positive: for ``bce``, the cell value that means 1 (every other present value is
            0); without it the column must hold 0 and 1.
    """

    column: str
    loss: str = "mse"
    metrics: list[str] | None = None
    role: str = "main"
    weight: float = 1.0
    positive: str | None = None

    @property
    def kind(self) -> Kind:
        """The task kind of :attr:`loss`."""
        return get_loss(self.loss).kind


def target_specs(tasks: Mapping[str, Any] | None) -> list[TargetSpec]:
    """The ``tasks:`` mapping ``{column: {loss: ..., ...}}`` (or ``{column: loss}``) as
    specs, each checked."""
    if not tasks or not isinstance(tasks, Mapping):
        raise TableError(
            "tasks: map each target column to its loss, e.g. tasks: {price: {loss: mse}, "
            "sold: {loss: bce}}"
        )
    keys = [f.name for f in fields(TargetSpec) if f.name != "column"]
    specs = []
    for column, spec in tasks.items():
        options = {"loss": spec} if isinstance(spec, str) else dict(spec or {})
        unknown = sorted(set(options) - set(keys))
        if unknown:
            raise TableError(f"tasks.{column}: unknown key(s) {unknown}; valid keys: {keys}")
        made = TargetSpec(str(column), **options)
        try:
            made.kind  # noqa: B018  (checks the loss name)
        except KeyError as error:
            raise TableError(f"tasks.{column}: {error.args[0]}") from None
        if made.positive is not None and made.kind != "binary":
            raise TableError(f"tasks.{column}: positive applies to bce tasks only")
        specs.append(made)
    return specs


@dataclass
class Labels:
    """A target column's labels for every row: ``values`` float (NaN missing) or, for
    ``ce``, integer codes (-1 missing); ``classes`` the class of each code."""

    values: Tensor
    classes: list[str] = field(default_factory=list)


def parse_labels(
    spec: TargetSpec, cells: Sequence[str], split_of_row: Sequence[str], where: str
) -> Labels:
    """The labels of ``spec.column`` (``cells``), checked: numbers for regression, 0/1 (or
    ``positive``) for ``bce``, and for ``ce`` classes seen in the training rows only."""
    what = f"{where}: task {spec.column!r} ({spec.loss})"
    if spec.kind == "multiclass":
        present = [(c.strip(), s) for c, s in zip(cells, split_of_row, strict=True)]
        classes = sorted_values({c for c, s in present if s == "train" and not is_missing(c)})
        if len(classes) < 2:
            raise TableError(f"{what} needs at least 2 classes in the training rows")
        code = {c: i for i, c in enumerate(classes)}
        for c, s in present:
            if s != "train" and not is_missing(c) and c not in code:
                count = sum(1 for c2, s2 in present if c2 == c and s2 == s)
                raise TableError(
                    f"{what}: class {c!r} appears in {count} {s} row(s) but in no training "
                    "row; the model cannot predict a class it never saw: merge it into a "
                    "known class, drop those rows, or split so that training holds it"
                )
        values = [-1 if is_missing(c) else code[c] for c, _ in present]
        return Labels(torch.tensor(values, dtype=torch.long), classes)
    if spec.kind == "binary" and spec.positive is not None:
        positive = str(spec.positive)
        flags = [math.nan if is_missing(c) else float(c.strip() == positive) for c in cells]
        return Labels(torch.tensor(flags, dtype=torch.float32))
    parsed = _numbers_or_hint(spec, cells, what)
    if spec.kind == "binary":
        seen = set(np.unique(parsed[~np.isnan(parsed)]).tolist())
        if not seen <= {0.0, 1.0}:
            raise TableError(
                f"{what} needs 0/1 labels; column {spec.column!r} has values "
                f"{sorted(seen)[:5]}: set positive: VALUE for the value that means 1"
            )
    return Labels(torch.tensor(parsed, dtype=torch.float32))


def _numbers_or_hint(spec: TargetSpec, cells: Sequence[str], what: str) -> np.ndarray:
    try:
        return numbers(cells, what)
    except TableError as error:
        if spec.kind != "binary":
            raise
        values = sorted({c for c in cells if not is_missing(c)})[:5]
        raise TableError(
            f"{what} needs 0/1 labels; column {spec.column!r} has values {values}: set "
            f"positive: VALUE for the value that means 1 (e.g. positive: {values[-1]!r})"
        ) from error


def fitted_scale(train_values: Tensor) -> tuple[float, float]:
    """``(mean, std)`` of the labelled training values (population std; 1 if constant)."""
    present = train_values[~train_values.isnan()].double()
    if present.numel() == 0:
        raise TableError("a regression task has no labelled training row")
    std = float(present.std(unbiased=False)) if present.numel() > 1 else 0.0
    return float(present.mean()), std if std > 0 else 1.0


def loss_scale(kind: Kind, loss: str, train_values: Tensor, classes: int) -> float:
    """The loss of a prediction of 0 (about an untrained model's): ``mean y^2`` for ``mse``,
    ``mean |y|`` for ``l1``/``huber``, ``log 2`` for ``bce``, ``log C`` for ``ce``."""
    if kind == "binary":
        return math.log(2)
    if kind == "multiclass":
        return math.log(classes)
    present = train_values[~train_values.isnan()].double()
    return float(present.square().mean() if loss == "mse" else present.abs().mean())


def warn_unscaled(scales: Mapping[str, float]) -> None:
    """Warn when the tasks' loss scales (:func:`loss_scale`) differ by more than 10x while
    target scaling is off, naming the balancers invariant to a task's loss scale."""
    if len(scales) < 2 or min(scales.values()) <= 0:
        return
    ratio = max(scales.values()) / min(scales.values())
    if ratio <= 10:
        return
    from polytask.balancers.registry import with_property

    largest = max(scales, key=scales.__getitem__)
    smallest = min(scales, key=scales.__getitem__)
    warnings.warn(
        f"scale_targets is off and the task losses differ {ratio:.3g}x in scale "
        f"({largest!r} {scales[largest]:.3g}, {smallest!r} {scales[smallest]:.3g}): most "
        "balancers then favour one task. Turn scale_targets on, or use a balancer invariant "
        f"to a task's loss scale: {', '.join(with_property('loss_scale_invariant'))}",
        UserWarning,
        stacklevel=3,
    )
