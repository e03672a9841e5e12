"""The ``table`` dataset: a user's own CSV, Parquet file or pandas DataFrame, with a mapping
of target columns to tasks, as a multi-task dataset (no code)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from polytask.data.dataset import TensorTaskDataset
from polytask.data.registry import register
from polytask.data.splits import SPLITS, DataSplits, fraction_partition
from polytask.data.table_source import (
    Columns,
    TableError,
    is_missing,
    numbers,
    read_table,
    require_columns,
    sorted_values,
)
from polytask.data.table_targets import (
    DEFAULT_METRICS,
    Labels,
    TargetSpec,
    fitted_scale,
    loss_scale,
    parse_labels,
    target_specs,
    warn_unscaled,
)
from polytask.data.tabular import Encoding, TabularEncoder, input_spec
from polytask.tasks.task import Task

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
"""Values a split column may hold (case-insensitive) and the split each means."""


@register("table")
def table(
    source: Any = None,
    tasks: Mapping[str, Any] | None = None,
    inputs: Sequence[str] | Literal["rest"] = "rest",
    categorical: Sequence[str] | None = None,
    task_column: str | None = None,
    split_column: str | None = None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    scale_targets: bool = True,
    standardize_inputs: bool | Sequence[str] = True,
    missing_inputs: Literal["error", "mean"] = "error",
    encoding: Encoding = "onehot",
    embed_dim: int = 8,
) -> DataSplits:
    """Your own table as a multi-task dataset: each target column named in ``tasks`` is a
    task, the other columns are inputs. Every statistic (scales, codes, class lists) is
    fitted on the training split only.

    Args:
        source: a CSV file (header line first; ``.tsv`` and ``.gz`` too), a Parquet file
            (``pip install 'polytask[table]'``) or a pandas DataFrame.
        tasks: ``{column: {loss: bce|ce|mse|l1|huber, metrics: [...], role: main|auxiliary,
            weight: 1.0, positive: VALUE}}`` (or ``{column: loss}``). An empty or ``NA``
            cell is a missing label: the row trains and scores the other tasks.
        inputs: input columns, or ``"rest"``: every column that is not a target, the task
            column or the split column.
        categorical: input columns to embed as categories (one-hot or a
            :class:`~polytask.models.FeatureSchema` per ``encoding``); default: the columns
            with a value that is not a number. A value unseen in training gets code 0.
        task_column: per-task data (each row belongs to one task, as in the ``school``
            data): with one target column in ``tasks``, each value of this column is a
            task, ``{task_column}_{value}``, labelled on its own rows only. Each task's rows
            are split by ``fractions`` on their own, with ``seed`` + the task's index.
        split_column: a column of ``train``/``val``/``test`` per row; otherwise rows are
            split at random by ``fractions`` (train, val, test) with ``seed``.
        scale_targets: regression targets are standardised with training statistics: the
            model learns ``(y - mean) / std`` and metrics and predictions are reported in
            the target's units (:attr:`~polytask.tasks.Task.target_scale`). Turning it off
            warns when the tasks' loss scales differ by more than 10x.
        standardize_inputs: standardise numeric inputs with training statistics (``True``),
            none (``False``) or the listed columns.
        missing_inputs: an empty numeric input cell is an error (``"error"``) or takes the
            training mean (``"mean"``).
        encoding, embed_dim: categorical inputs one-hot (``onehot``) or as named codes for
            embeddings (``embedding``, width ``embed_dim``).

    Example:
        >>> import polytask.data as pd  # doctest: +SKIP
        >>> data = pd.load("table", source="houses.csv",
        ...                tasks={"price": "mse", "sold": {"loss": "bce"}})  # doctest: +SKIP
    """
    columns, where = read_table(source)
    specs = target_specs(tasks)
    targets = [s.column for s in specs]
    special = [c for c in (task_column, split_column) if c is not None]
    require_columns(columns, targets, "target column", where)
    require_columns(columns, special, "column", where)
    names = _input_names(columns, inputs, targets + special, where)
    n = len(columns[targets[0]])
    owner, task_names = _owners(columns, task_column, specs, where)
    split_rows = _split_rows(columns, split_column, owner, len(task_names), fractions, seed, n)
    split_of_row = ["train"] * n
    for split, members in split_rows.items():
        for i in members.tolist():
            split_of_row[i] = split
    labels = {s.column: parse_labels(s, columns[s.column], split_of_row, where) for s in specs}
    per_task = _task_labels(specs, labels, owner, task_names)
    encoder = _fit_inputs(
        columns, names, categorical, split_rows["train"], standardize_inputs, missing_inputs
    )
    rows = list(zip(*(columns[c] for c in names), strict=True))
    train_rows = split_rows["train"]
    made_tasks, scales, loss_scales = [], {}, {}
    for name, (spec, values, classes) in per_task.items():
        scale = None
        if spec.kind == "regression" and scale_targets:
            scale = fitted_scale(values[train_rows])
            scales[name] = scale
        loss_scales[name] = loss_scale(spec.kind, spec.loss, values[train_rows], len(classes))
        made_tasks.append(
            Task(
                name,
                spec.loss,
                metrics=tuple(spec.metrics or DEFAULT_METRICS[spec.kind]),
                role=spec.role,  # type: ignore[arg-type]
                weight=spec.weight,
                num_classes=len(classes) or None,
                target_scale=scale,
            )
        )
    if not scale_targets:
        warn_unscaled(loss_scales)
    datasets = {
        split: TensorTaskDataset(
            encoder.transform([rows[i] for i in idx.tolist()], encoding),
            {name: values[idx] for name, (_, values, _) in per_task.items()},
            name=f"table/{split}",
        )
        for split, idx in split_rows.items()
    }
    row_spec, schema = input_spec(encoder, encoding, embed_dim)
    metadata = {
        "dataset": "table",
        "source": where,
        "sizes": {s: len(d) for s, d in datasets.items()},
        "inputs": {"categorical": encoder.names[: len(encoder.categorical)],
                   "numeric": encoder.names[len(encoder.categorical):]},
        "split": f"column {split_column!r}" if split_column else f"random {list(fractions)}",
        "seed": seed,
        "encoding": encoding,
        "target_scale": scales,
        "classes": {n: c for n, (_, _, c) in per_task.items() if c},
    }  # fmt: skip
    if schema is not None:
        metadata["feature_schema"] = schema
    return DataSplits(
        datasets["train"], datasets["val"], datasets["test"], made_tasks, row_spec.shape,
        metadata, row_spec,
    )  # fmt: skip


def _input_names(
    columns: Columns, inputs: Sequence[str] | str, excluded: list[str], where: str
) -> list[str]:
    if isinstance(inputs, str):
        if inputs != "rest":
            raise TableError(f"inputs must be a list of columns or 'rest', got {inputs!r}")
        names = [c for c in columns if c not in excluded]
    else:
        names = list(inputs)
        require_columns(columns, names, "input column", where)
        leaked = [c for c in names if c in excluded]
        if leaked:
            raise TableError(
                f"{where}: {leaked} are targets, the task column or the split column and "
                "cannot be inputs too"
            )
    if not names:
        raise TableError(f"{where}: no input columns are left besides the targets")
    return names


def _owners(
    columns: Columns, task_column: str | None, specs: list[TargetSpec], where: str
) -> tuple[np.ndarray | None, list[str]]:
    """Per-task data: each row's task index and the task names; otherwise ``None`` and
    the target columns."""
    if task_column is None:
        return None, [s.column for s in specs]
    if len(specs) != 1:
        raise TableError(
            f"{where}: with task_column, name one target column in tasks (each value of "
            f"{task_column!r} makes it a task); got {[s.column for s in specs]}"
        )
    cells = [c.strip() for c in columns[task_column]]
    if any(is_missing(c) for c in cells):
        raise TableError(f"{where}: task column {task_column!r} has empty cells")
    values = sorted_values(set(cells))
    index = {v: i for i, v in enumerate(values)}
    return np.array([index[c] for c in cells]), [f"{task_column}_{v}" for v in values]


def _split_rows(
    columns: Columns,
    split_column: str | None,
    owner: np.ndarray | None,
    tasks: int,
    fractions: Sequence[float],
    seed: int,
    n: int,
) -> dict[str, Tensor]:
    """Row indices of each split: by the split column (file order), at random over all rows,
    or per task (each task's rows on their own, seed + task index)."""
    if split_column is not None:
        cells = [c.strip().lower() for c in columns[split_column]]
        bad = sorted({c for c in cells if c not in SPLIT_NAMES})
        if bad:
            raise TableError(
                f"split column {split_column!r} holds {bad[:5]}; each row needs one of "
                f"{sorted(SPLIT_NAMES)}"
            )
        meant = [SPLIT_NAMES[c] for c in cells]
        rows = {s: torch.tensor([i for i, m in enumerate(meant) if m == s]) for s in SPLITS}
    elif owner is None:
        rows = dict(zip(SPLITS, fraction_partition(n, fractions, seed), strict=True))
    else:
        parts: dict[str, list[Tensor]] = {s: [] for s in SPLITS}
        for t in range(tasks):
            mine = torch.from_numpy(np.flatnonzero(owner == t))
            chunks = fraction_partition(len(mine), fractions, seed + t)
            for s, idx in zip(SPLITS, chunks, strict=True):
                parts[s].append(mine[idx])
        rows = {s: torch.cat(p) for s, p in parts.items()}
    empty = [s for s, idx in rows.items() if len(idx) == 0]
    if empty:
        raise TableError(f"the {empty} split(s) have no rows; every split needs at least one")
    return rows


def _task_labels(
    specs: list[TargetSpec],
    labels: dict[str, Labels],
    owner: np.ndarray | None,
    task_names: list[str],
) -> dict[str, tuple[TargetSpec, Tensor, list[str]]]:
    """``{task: (spec, labels of every row, classes)}``; per-task data labels each task on
    its own rows only (missing elsewhere)."""
    if owner is None:
        return {s.column: (s, labels[s.column].values, labels[s.column].classes) for s in specs}
    spec, parsed = specs[0], labels[specs[0].column]
    missing = -1 if parsed.values.dtype == torch.long else float("nan")
    mine = torch.from_numpy(owner)
    return {
        name: (spec, parsed.values.masked_fill(mine != t, missing), parsed.classes)
        for t, name in enumerate(task_names)
    }


def _fit_inputs(
    columns: Columns,
    names: list[str],
    categorical: Sequence[str] | None,
    train_rows: Tensor,
    standardize_inputs: bool | Sequence[str],
    missing_inputs: str,
) -> TabularEncoder:
    """The input encoder fitted on the training rows; numeric inputs with missing cells are
    refused or filled with the training mean (``missing_inputs``)."""
    parsed: dict[str, np.ndarray] = {}  # each column parsed once
    for column in names:
        with contextlib.suppress(TableError):  # not numbers: categorical, or an error below
            parsed[column] = numbers(columns[column], f"input column {column!r}")
    if categorical is None:
        categorical = [c for c in names if c not in parsed]
    else:
        require_columns(columns, list(categorical), "categorical column", "categorical")
        outside = [c for c in categorical if c not in names]
        if outside:
            raise TableError(f"categorical: {outside} are not input columns")
    numeric = [c for c in names if c not in categorical]
    train = train_rows.tolist()
    for column in numeric:
        if column not in parsed:  # raises, naming the first cell that is not a number
            try:
                numbers(columns[column], f"input column {column!r}")
            except TableError as error:
                raise TableError(f"{error}: list it in categorical") from None
        values = parsed[column]
        holes = np.flatnonzero(np.isnan(values))
        if len(holes) and missing_inputs != "mean":
            raise TableError(
                f"input column {column!r} has {len(holes)} empty cell(s) (data rows "
                f"{(holes[:3] + 1).tolist()}...): fill them, leave the column out of inputs, "
                "or set missing_inputs: mean"
            )
        if len(holes):
            mean = float(np.nanmean(values[train]))
            columns[column] = [repr(mean) if is_missing(c) else c for c in columns[column]]
    scaled = numeric if standardize_inputs is True else list(standardize_inputs or [])
    not_numeric = [c for c in scaled if c not in numeric]
    if not_numeric:
        raise TableError(f"standardize_inputs: {not_numeric} are not numeric input columns")
    position = {c: j for j, c in enumerate(names)}
    rows = [[columns[c][i] for c in names] for i in train]
    encoder = TabularEncoder.fit(
        rows, [position[c] for c in categorical],
        [position[c] for c in numeric], names,
    )  # fmt: skip
    for j, column in enumerate(numeric):
        if column not in scaled:
            encoder.mean[j], encoder.std[j] = 0.0, 1.0
    return encoder
