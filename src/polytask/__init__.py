"""polytask: multi-task learning for PyTorch.

In your own training loop::

    out = model(x)                                   # TaskOutputs: predictions + features
    losses = tasks.losses(out, y)                    # one loss per task, masked, NaN-checked
    polytask.backward(losses, balancer, features=out.features)   # or shared_params=...
    optimizer.step()
"""

from polytask import balancers, models
from polytask.gradients import BackwardResult, backward
from polytask.outputs import TaskOutputs, branch, features_unused, features_used
from polytask.tasks import NonFiniteLossError, Task, TaskLosses, TaskSet

__version__ = "0.1.0"

__all__ = [
    "BackwardResult",
    "NonFiniteLossError",
    "Task",
    "TaskLosses",
    "TaskOutputs",
    "TaskSet",
    "__version__",
    "backward",
    "balancers",
    "branch",
    "features_unused",
    "features_used",
    "load_run",
    "models",
]


def __getattr__(name: str) -> object:
    # load_run lives in polytask.training, imported only when asked for (keeps
    # ``import polytask`` light).
    if name == "load_run":
        from polytask.training.load_run import load_run

        return load_run
    raise AttributeError(f"module 'polytask' has no attribute {name!r}")
