"""Targets a task's loss cannot take silently: ``bce`` labels outside ``[0, 1]`` (the loss
accepts any number and trains on nonsense) and ``ce`` classes outside ``[0, C)``.

:func:`out_of_range` is a device-side flag (read in the same transfer as the finite check,
so it costs no extra synchronisation); :func:`range_message` names the task and a bad value
on the error path; :func:`check_targets` checks a whole dataset's targets once, before
training (on CUDA an out-of-range class is a device assert, not an exception).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from polytask.tasks.losses import label_mask
from polytask.tasks.task import Task


def out_of_range(task: Task, target: Tensor, mask: Tensor, classes: int | None) -> Tensor:
    """A 0-d bool tensor on ``target``'s device: whether a labelled element of ``target``
    (``mask``) is outside what ``task``'s loss takes. ``classes``: ``C`` of a ``ce`` task
    (``None``: not checked)."""
    if task.kind == "binary":
        bad = (target < 0) | (target > 1)
    elif task.kind == "multiclass" and classes is not None:
        bad = target >= classes
    else:
        return torch.zeros((), dtype=torch.bool, device=target.device)
    while mask.dim() < bad.dim():
        mask = mask.unsqueeze(-1)
    return (bad & mask).any()


def range_message(task: Task, target: Tensor, mask: Tensor, classes: int | None) -> str:
    """What is wrong with ``target`` for ``task`` (reads the device; the error path only)."""
    while mask.dim() < target.dim():
        mask = mask.unsqueeze(-1)
    values = target[mask.expand_as(target)]
    if task.kind == "binary":
        bad = values[(values < 0) | (values > 1)]
        return (
            f"task {task.name!r} (bce): labels must be between 0 and 1 (NaN for a missing "
            f"label), got {float(bad[0]):g}; map the labels to 0/1 or use ce or mse"
        )
    bad = values[values >= (classes or 0)]
    return (
        f"task {task.name!r} (ce): class {int(bad[0])} is out of range for {classes} classes "
        f"(targets 0..{(classes or 1) - 1}, negative for a missing label); give the head "
        "num_classes that covers every class"
    )


def check_targets(
    tasks: Sequence[Task], targets: Mapping[str, Tensor], where: str = "data"
) -> None:
    """Raise ``ValueError`` naming the task and a bad value when a dataset's targets do not
    fit the tasks' losses (:func:`out_of_range`; ``ce`` needs ``Task.num_classes``)."""
    for task in tasks:
        target = targets.get(task.name)
        if target is None:
            continue
        mask = label_mask(target)
        if bool(out_of_range(task, target, mask, task.num_classes)):
            raise ValueError(f"{where}: {range_message(task, target, mask, task.num_classes)}")
