"""Getting data into the long format the classic estimators take: rows ``X``, targets
``y`` and each row's task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def stack_tasks(
    X_list: Sequence[Any], y_list: Sequence[Any], names: Sequence[Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-task lists ``[X_1, ...], [y_1, ...]`` (MALSAR's cell arrays) as ``(X, y,
    task_ids)``; task ids are ``names`` or ``0 .. T-1``."""
    if len(X_list) != len(y_list):
        raise ValueError(f"{len(X_list)} feature blocks but {len(y_list)} target blocks")
    names = list(range(len(X_list))) if names is None else list(names)
    if len(names) != len(X_list):
        raise ValueError(f"{len(names)} names for {len(X_list)} tasks")
    xs = [np.asarray(x, dtype=np.float64) for x in X_list]
    ys = [np.asarray(y, dtype=np.float64).reshape(-1) for y in y_list]
    for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(f"task {names[t]!r}: X has shape {x.shape}, y {y.shape}")
    ids = np.concatenate([np.full(len(y), i) for i, y in enumerate(ys)])
    return np.vstack(xs), np.concatenate(ys), np.asarray(names, dtype=object)[ids]


def long_format(dataset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A polytask dataset of per-task data (each row labels one task, NaN elsewhere, as the
    ``school``, ``computer_survey`` and ``parkinsons(mode="patients")`` loaders and the
    ``table`` data set with a task column give it) as ``(X, y, task_ids)``, task ids being
    the task names. A row that labels no task is left out; one that labels several tasks is
    an error (that is one input with several targets: use the neural models)."""
    names = list(dataset.targets)
    Y = np.stack([dataset.targets[n].double().numpy() for n in names], axis=1)
    labelled = ~np.isnan(Y)
    several = labelled.sum(axis=1) > 1
    if several.any():
        raise ValueError(
            f"{int(several.sum())} rows label several tasks (one input with several targets): "
            "the classic estimators need per-task data, each row labelling one task (school, "
            "computer_survey, parkinsons with mode: patients, or a table with a task_column); "
            "for this data set use polytask train"
        )
    rows = labelled.any(axis=1)
    X = dataset.inputs.double().numpy()[rows]
    task = labelled[rows].argmax(axis=1)
    y = Y[rows, task]
    return X, y, np.asarray(names, dtype=object)[task]
