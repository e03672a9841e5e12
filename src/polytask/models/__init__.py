"""Multi-task architectures (``polytask.models``), one module each, registered by name.

``polytask.models.create(name, **options)`` builds one; ``available()`` lists the names and
``describe()`` their options. Every model returns :class:`~polytask.outputs.TaskOutputs` and
partitions its parameters exactly into shared and per-task groups, so every balancer works
with every model at both gradient levels.
"""

from polytask.models import (  # noqa: F401  (registration)
    bilstm,
    cgc,
    cross_stitch,
    esmm,
    fafs,
    mmoe,
    mrn,
    mtan,
    omoe,
    ple,
    shared_bottom,
    sluice,
    small_towers,
    transformer,
    ufo,
)
from polytask.models.base import MultiTaskModel, check_partition
from polytask.models.bilstm import BiLSTMEncoder, BiLSTMMTL
from polytask.models.cgc import CGC
from polytask.models.cross_stitch import CrossStitch
from polytask.models.esmm import ESMM
from polytask.models.experts import Experts, Gate
from polytask.models.fafs import FAFS, group_by_affinity, task_affinity
from polytask.models.features import (
    DenseFeature,
    FeatureEmbedding,
    FeatureSchema,
    SequenceFeature,
    SparseFeature,
)
from polytask.models.input_layer import WithInputLayer
from polytask.models.layers import LeNetTrunk, mlp
from polytask.models.mmoe import MMoE
from polytask.models.mrn import MRN
from polytask.models.mtan import MTAN
from polytask.models.omoe import OMoE
from polytask.models.ple import PLE
from polytask.models.registry import MODELS, available, create, describe
from polytask.models.shared_bottom import SharedBottom
from polytask.models.sharing import share
from polytask.models.sluice import Sluice
from polytask.models.small_towers import SmallTowers
from polytask.models.transformer import EncoderAdapter, TransformerMTL
from polytask.models.ufo import UFO

__all__ = [
    "CGC",
    "ESMM",
    "FAFS",
    "MODELS",
    "MRN",
    "MTAN",
    "PLE",
    "UFO",
    "BiLSTMEncoder",
    "BiLSTMMTL",
    "CrossStitch",
    "DenseFeature",
    "EncoderAdapter",
    "Experts",
    "FeatureEmbedding",
    "FeatureSchema",
    "Gate",
    "LeNetTrunk",
    "MMoE",
    "MultiTaskModel",
    "OMoE",
    "SequenceFeature",
    "SharedBottom",
    "Sluice",
    "SmallTowers",
    "SparseFeature",
    "TransformerMTL",
    "WithInputLayer",
    "available",
    "check_partition",
    "create",
    "describe",
    "group_by_affinity",
    "mlp",
    "share",
    "task_affinity",
]
