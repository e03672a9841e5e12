"""Multi-task performance against single-task baselines: delta-m and delta-p.

Metrics are nested mappings ``{task: {metric: value}}``; directions say, per metric, whether a
higher value is better (``TaskSet.directions()``, from torchmetrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Metrics = Mapping[str, Mapping[str, float]]
Directions = Mapping[str, Mapping[str, bool]]


def relative_changes(
    metrics: Metrics,
    baselines: Metrics,
    directions: Directions,
    tasks: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """``(-1)^{d_k} (M_k - B_k) / |B_k|`` per task and metric, where ``d_k = 1`` when higher is
    better: a negative value is an improvement over the baseline, as in delta-m.

    Args:
        metrics: the multi-task model's metrics.
        baselines: the single-task baselines' metrics (same tasks and metric names).
        directions: ``{task: {metric: higher_is_better}}``.
        tasks: the tasks to compare (default: every task of ``metrics``).

    Raises:
        KeyError: a task or metric has no baseline or no direction (named in the message).
        ValueError: a baseline is zero (the relative change is undefined).
    """
    changes: dict[str, dict[str, float]] = {}
    for task in tasks if tasks is not None else list(metrics):
        if task not in baselines:
            raise KeyError(
                f"no single-task baseline for task {task!r}; baselines have {sorted(baselines)}"
            )
        changes[task] = {}
        for metric, value in metrics[task].items():
            if metric not in baselines[task]:
                raise KeyError(f"baseline of task {task!r} has no metric {metric!r}")
            if metric not in directions.get(task, {}):
                raise KeyError(f"no direction (higher/lower is better) for {task}/{metric}")
            base = float(baselines[task][metric])
            if base == 0:
                raise ValueError(f"baseline {task}/{metric} is 0: its relative change is undefined")
            sign = -1.0 if directions[task][metric] else 1.0
            changes[task][metric] = sign * (float(value) - base) / abs(base)
    if not any(changes.values()):
        raise ValueError("no metric to compare: give tasks with at least one metric")
    return changes


def delta_m(
    metrics: Metrics,
    baselines: Metrics,
    directions: Directions,
    tasks: Sequence[str] | None = None,
) -> float:
    """delta-m in percent: the mean over **all** metrics of all tasks of the signed relative
    change against the single-task baseline,
    ``100/K * sum_k (-1)^{d_k} (M_k - B_k) / B_k`` (Maninis, Radosavovic, Kokkinos, CVPR 2019;
    the form and sign of Navon et al. 2022 (Nash-MTL) and Liu et al. 2021 (CAGrad):
    lower is better, negative means multi-task beats single-task). Tasks with more metrics
    weigh more; see :func:`delta_p` for the task-balanced form."""
    changes = relative_changes(metrics, baselines, directions, tasks)
    values = [v for per_task in changes.values() for v in per_task.values()]
    return 100.0 * sum(values) / len(values)


def delta_p(
    metrics: Metrics,
    baselines: Metrics,
    directions: Directions,
    tasks: Sequence[str] | None = None,
) -> float:
    """delta-p in percent: the task-balanced form of :func:`delta_m`: the mean over each
    task's metrics, then the mean over tasks, so every task counts once whatever its number
    of metrics. Lower is better."""
    changes = relative_changes(metrics, baselines, directions, tasks)
    per_task = [sum(v.values()) / len(v) for v in changes.values() if v]
    return 100.0 * sum(per_task) / len(per_task)
