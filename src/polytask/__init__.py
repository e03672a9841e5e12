"""polytask: multi-task learning for PyTorch.

In your own training loop::

    out = model(x)                                   # TaskOutputs: predictions + features
    losses = tasks.losses(out, y)                    # one loss per task, masked, NaN-checked
    polytask.backward(losses, balancer, features=out.features)   # or shared_params=...
    optimizer.step()
"""

import importlib
from typing import Any

__version__ = "0.1.0"

# Imported when first used (PEP 562), so that ``import polytask`` and ``polytask --help`` do
# not load torch and scipy: name -> (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "balancers": ("polytask.balancers", None),
    "models": ("polytask.models", None),
    "data": ("polytask.data", None),
    "gradients": ("polytask.gradients", None),
    "training": ("polytask.training", None),
    "testing": ("polytask.testing", None),
    "BackwardResult": ("polytask.gradients", "BackwardResult"),
    "backward": ("polytask.gradients", "backward"),
    "TaskOutputs": ("polytask.outputs", "TaskOutputs"),
    "branch": ("polytask.outputs", "branch"),
    "features_unused": ("polytask.outputs", "features_unused"),
    "features_used": ("polytask.outputs", "features_used"),
    "NonFiniteLossError": ("polytask.tasks", "NonFiniteLossError"),
    "Task": ("polytask.tasks", "Task"),
    "TaskLosses": ("polytask.tasks", "TaskLosses"),
    "TaskSet": ("polytask.tasks", "TaskSet"),
    "load_run": ("polytask.training.load_run", "load_run"),
}

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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'polytask' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
