"""Settings 2 and 3: tasks with datasets of their own, combined into one grouped dataset."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from polytask._registry import unknown_name_message
from polytask.data.dataset import TensorTaskDataset
from polytask.data.registry import load, register
from polytask.data.splits import SPLITS, DataSplits
from polytask.tasks.task import Task


def _missing_like(target: Tensor, rows: int) -> Tensor:
    """``rows`` missing labels shaped like ``target``'s rows (NaN, or -1 for classes)."""
    shape = (rows, *target.shape[1:])
    if target.is_floating_point():
        return torch.full(shape, float("nan"), dtype=target.dtype)
    return torch.full(shape, -1, dtype=target.dtype)


def concat_groups(
    parts: Mapping[str, TensorTaskDataset], name: str
) -> tuple[TensorTaskDataset, dict[str, Tensor]]:
    """One dataset of every part's rows (in order) with every part's targets; a row's
    labels of tasks from other parts are missing. Returns it and ``{part: row indices}``.

    Raises:
        ValueError: the parts' inputs differ in shape or type (setting 2 with inputs of
            different kinds needs per-task encoders; not supported here).
    """
    first = next(iter(parts.values()))
    if isinstance(first.inputs, dict):
        raise ValueError("combining datasets with named (dict) inputs is not supported")
    shape, dtype = first.inputs.shape[1:], first.inputs.dtype
    for part, data in parts.items():
        if (
            isinstance(data.inputs, dict)
            or data.inputs.shape[1:] != shape
            or data.inputs.dtype != dtype
        ):
            raise ValueError(
                f"part {part!r} has inputs {getattr(data.inputs, 'shape', 'dict')} but the first "
                f"part {tuple(shape)} ({dtype}): combined tasks must share one input shape and type"
            )
    tasks: dict[str, Tensor] = {}
    for data in parts.values():
        for task, target in data.targets.items():
            if task in tasks:
                raise ValueError(
                    f"task {task!r} appears in two parts; give each part's tasks distinct names"
                )
            tasks[task] = target
    inputs = torch.cat([d.inputs for d in parts.values()])  # type: ignore[misc]
    targets = {
        task: torch.cat(
            [
                d.targets[task] if task in d.targets else _missing_like(ref, len(d))
                for d in parts.values()
            ]
        )
        for task, ref in tasks.items()
    }
    groups, start = {}, 0
    for part, data in parts.items():
        groups[part] = torch.arange(start, start + len(data))
        start += len(data)
    return TensorTaskDataset(inputs, targets, name=name), groups


def combine(parts: Mapping[str, DataSplits], name: str = "mixture") -> DataSplits:
    """Combine data sets that each label their own tasks (settings 2 and 3) into one
    :class:`DataSplits` whose rows are grouped by source (``metadata["groups"]``: per split,
    ``{part: row indices}``); batch it with a task sampler
    (:class:`~polytask.data.samplers.GroupBatcher`). Task names must be distinct across
    parts."""
    splits = {
        s: concat_groups({p: getattr(d, s) for p, d in parts.items()}, f"{name}/{s}")
        for s in SPLITS
    }
    tasks: list[Task] = [t for d in parts.values() for t in d.tasks]
    meta: dict[str, Any] = {
        "dataset": name,
        "parts": {p: d.metadata for p, d in parts.items()},
        "groups": {s: groups for s, (_, groups) in splits.items()},
        "sizes": {s: len(d) for s, (d, _) in splits.items()},
    }
    first = next(iter(parts.values()))
    train, val, test = (splits[s][0] for s in SPLITS)
    return DataSplits(train, val, test, tasks, first.input_shape, meta, first.input)


def rename_tasks(
    data: DataSplits,
    names: Mapping[str, str] | None = None,
    prefix: str = "",
    keep: Sequence[str] | None = None,
) -> DataSplits:
    """``data`` with tasks renamed (``names`` or a ``prefix``) and restricted to ``keep``."""
    chosen = [t for t in data.tasks if keep is None or t.name in keep]
    if keep is not None:
        for k in keep:
            if k not in [t.name for t in data.tasks]:
                raise KeyError(unknown_name_message("task", k, [t.name for t in data.tasks]))
    new = {t.name: (names or {}).get(t.name, prefix + t.name) for t in chosen}

    def relabel(d: TensorTaskDataset) -> TensorTaskDataset:
        masks = None if d.masks is None else {new[k]: v for k, v in d.masks.items() if k in new}
        return TensorTaskDataset(
            d.inputs, {new[k]: d.targets[k] for k in new}, masks or None, d.name
        )

    tasks = [dataclasses.replace(t, name=new[t.name]) for t in chosen]
    return DataSplits(
        relabel(data.train),
        relabel(data.val),
        relabel(data.test),
        tasks,
        data.input_shape,
        data.metadata,
        data.input,
    )


@register("mixture")
def mixture(parts: Sequence[Mapping[str, Any]]) -> DataSplits:
    """Several registered data sets as one grouped data set (settings 2 and 3), for YAML::

        dataset:
          name: mixture
          options:
            parts:
              - {name: adult, tasks: [income], prefix: "adult_"}
              - {name: census_income, options: {group: 1}, tasks: [income], prefix: "census_"}

    Each part: ``name`` (a registered data set), ``options`` (its loader's options), ``tasks``
    (a subset to keep, default all), ``prefix`` for its task names (default
    ``"<name>_"``), ``group`` (the part's name for the sampler, default ``name``). The
    parts' inputs must have one shape.
    """
    if not parts:
        raise ValueError("mixture needs at least one part")
    loaded: dict[str, DataSplits] = {}
    for spec in parts:
        unknown = set(spec) - {"name", "options", "tasks", "prefix", "group"}
        if unknown:
            raise KeyError(f"unknown mixture part key(s) {sorted(unknown)}")
        data = load(spec["name"], **dict(spec.get("options") or {}))
        assert isinstance(data, DataSplits)
        group = spec.get("group", spec["name"])
        if group in loaded:
            raise ValueError(f"two mixture parts are both called {group!r}; give one a group=")
        loaded[group] = rename_tasks(
            data, prefix=spec.get("prefix", f"{spec['name']}_"), keep=spec.get("tasks")
        )
    return combine(loaded)
