"""Multi-task architectures (``polytask.models``), one module each, registered by name."""

from polytask.models import shared_bottom  # noqa: F401  (registration)
from polytask.models.base import MultiTaskModel, check_partition
from polytask.models.layers import LeNetTrunk, mlp
from polytask.models.registry import MODELS, available, create, describe
from polytask.models.shared_bottom import SharedBottom

__all__ = [
    "MODELS",
    "LeNetTrunk",
    "MultiTaskModel",
    "SharedBottom",
    "available",
    "check_partition",
    "create",
    "describe",
    "mlp",
]
