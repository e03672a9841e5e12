"""Multi-task architectures (``polytask.models``), one module each, registered by name."""

from polytask.models import cgc, mmoe, omoe, ple, shared_bottom  # noqa: F401  (registration)
from polytask.models.base import MultiTaskModel, check_partition
from polytask.models.cgc import CGC
from polytask.models.experts import Experts, Gate
from polytask.models.layers import LeNetTrunk, mlp
from polytask.models.mmoe import MMoE
from polytask.models.omoe import OMoE
from polytask.models.ple import PLE
from polytask.models.registry import MODELS, available, create, describe
from polytask.models.shared_bottom import SharedBottom
from polytask.models.sharing import share

__all__ = [
    "CGC",
    "MODELS",
    "PLE",
    "Experts",
    "Gate",
    "LeNetTrunk",
    "MMoE",
    "MultiTaskModel",
    "OMoE",
    "SharedBottom",
    "available",
    "check_partition",
    "create",
    "describe",
    "mlp",
    "share",
]
