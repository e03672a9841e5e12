"""Flower, imported lazily and configured before its first import: no telemetry, no update
check, no installing of packages at run time (``flwr run`` would otherwise install a CUDA
torch), a temporary ``FLWR_HOME`` unless one is set, and no Ray usage statistics."""

from __future__ import annotations

import importlib
import os
import tempfile
from types import ModuleType

from polytask._extras import missing_extra

# Read by Flower (and Ray) at import or at start: set before either is imported.
SETTINGS = {
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray's announced default (leave CUDA_VISIBLE_DEVICES alone for CPU-only actors), taken
    # now; otherwise Ray warns at every start.
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}


def flower_environment() -> None:
    """Set :data:`SETTINGS` (a value the user set is kept) and ``FLWR_HOME`` to a fresh
    temporary folder when none is set."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    if "FLWR_HOME" not in os.environ:
        os.environ["FLWR_HOME"] = tempfile.mkdtemp(prefix="polytask-flwr-")


def flower(module: str = "flwr.app") -> ModuleType:
    """Import ``module`` of Flower after :func:`flower_environment`; a missing Flower is
    one line naming the extra."""
    flower_environment()
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] in ("flwr", "ray"):
            what = "Flower's simulation engine" if error.name.startswith("ray") else "Flower"
            raise missing_extra(f"federated learning on {what}", "federated") from None
        raise
