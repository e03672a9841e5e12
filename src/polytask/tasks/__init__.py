"""Tasks: names, losses with masks, metrics with directions, roles (``polytask.tasks``)."""

from polytask.tasks.losses import LOSSES, get_loss, masked_mean
from polytask.tasks.metrics import METRICS, higher_is_better, make_metric
from polytask.tasks.task import Role, Task
from polytask.tasks.taskset import NonFiniteLossError, TaskLosses, TaskSet

__all__ = [
    "LOSSES",
    "METRICS",
    "NonFiniteLossError",
    "Role",
    "Task",
    "TaskLosses",
    "TaskSet",
    "get_loss",
    "higher_is_better",
    "make_metric",
    "masked_mean",
]
