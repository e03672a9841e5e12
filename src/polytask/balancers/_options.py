"""Per-task option values given by task name or in task order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polytask._registry import unknown_name_message

PerTask = Mapping[str, float] | Sequence[float]


def check_per_task(given: PerTask, task_names: Sequence[str], what: str, complete: bool) -> None:
    """Raise if ``given`` names an unknown task, has the wrong length, or (``complete``)
    misses a task."""
    if isinstance(given, Mapping):
        for key in given:
            if key not in task_names:
                raise KeyError(unknown_name_message(f"task in {what}", key, list(task_names)))
        missing = [n for n in task_names if n not in given]
        if complete and missing:
            raise KeyError(f"{what} has no entry for task(s) {missing}")
    elif len(given) != len(task_names):
        raise ValueError(f"{what} has {len(given)} entries for {len(task_names)} tasks")


def per_task_values(given: PerTask, task_names: Sequence[str], default: float = 0.0) -> list[float]:
    """The values in task order (tasks missing from a mapping get ``default``)."""
    if isinstance(given, Mapping):
        return [float(given.get(n, default)) for n in task_names]
    return [float(v) for v in given]
