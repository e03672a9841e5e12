"""Evaluation of a model on a split: mean loss per task over the labelled elements, metrics,
and the ``monitor`` score that model selection reads."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from typing import Any

import torch

from polytask.data.batching import IndexBatcher, IterableBatches
from polytask.data.dataset import Batch, TensorTaskDataset
from polytask.models.base import MultiTaskModel
from polytask.outputs import TaskOutputs
from polytask.tasks.taskset import TaskSet


@torch.no_grad()
def evaluate(
    model: MultiTaskModel,
    tasks: TaskSet,
    data: TensorTaskDataset | Iterable[Any],
    device: torch.device,
    batch_size: int,
    autocast: contextlib.AbstractContextManager[Any] | None = None,
) -> dict[str, Any]:
    """Mean loss and metrics per task on ``data`` (the model in eval mode).

    ``data`` is a :class:`~polytask.data.TensorTaskDataset` or any iterable of batches (a
    ``DataLoader``). Each task's loss is ``sum(loss x labelled count) / sum(counts)`` over the
    batches: a batch weighs by its labelled elements, not its rows (the labels of per-task
    data come in clumps). A task with no label in ``data`` has loss NaN.

    Returns:
        ``{"loss": {task: float}, "metrics": {task: {metric: float}}}``.
    """
    model.eval()
    metrics = {
        t: {k: m.to(device) for k, m in per.items()} for t, per in tasks.make_metrics().items()
    }
    batches: Iterable[Batch] = (
        IndexBatcher(data, batch_size, shuffle=False)
        if isinstance(data, TensorTaskDataset)
        else IterableBatches(data)  # fences the source's draws off torch's RNG
    )
    totals = torch.zeros(len(tasks), device=device, dtype=torch.float64)
    counts = torch.zeros_like(totals)
    for batch in batches:
        batch = batch.to(device)
        with autocast or contextlib.nullcontext():
            outputs = model(batch.inputs)
        scored = TaskOutputs(  # float predictions; no companions: a task is scored on its own
            {k: v.float() for k, v in outputs.predictions.items()},
            extras=outputs.extras,
            transitions=outputs.transitions,  # the CRF widens half precision itself
        )
        losses = tasks.losses(scored, batch.targets, batch.masks)
        assert losses.counts is not None
        totals += losses.detached().double() * losses.counts.double()
        counts += losses.counts.double()
        tasks.update_metrics(metrics, scored, batch.targets, batch.masks)
    mean = torch.where(counts > 0, totals / counts.clamp_min(1), torch.nan).tolist()
    return {
        "loss": dict(zip(tasks.names, mean, strict=True)),
        "metrics": {
            t: {k: float(m.compute()) for k, m in per.items()} for t, per in metrics.items()
        },
    }


def monitor_direction(tasks: TaskSet, monitor: str) -> bool:
    """Whether a larger ``monitor`` value is better (``loss``: no; ``task/metric``: the
    metric's direction); raises naming the task's metrics for an unknown one."""
    if monitor == "loss":
        return False
    task, _, metric = monitor.partition("/")
    if task not in tasks.names:
        from polytask._registry import unknown_name_message

        raise KeyError(
            f"schedule.monitor {monitor!r}: {unknown_name_message('task', task, tasks.names)} "
            "This run trains only those; set schedule.monitor=loss or a metric of one of them"
        )
    if metric not in tasks.task(task).metrics:
        raise ValueError(
            f"monitor {monitor!r}: task {task!r} has metrics {list(tasks.task(task).metrics)}"
        )
    return tasks.directions()[task][metric]


def monitor_score(evaluation: dict[str, Any], monitor: str) -> float:
    """The ``monitor`` value of an :func:`evaluate` result: the mean loss over the tasks that
    have labels (``loss``), or one task's metric (``task/metric``)."""
    if monitor == "loss":
        values = [v for v in evaluation["loss"].values() if not math.isnan(v)]
        return float(sum(values) / len(values)) if values else math.nan
    task, _, metric = monitor.partition("/")
    return float(evaluation["metrics"][task][metric])
