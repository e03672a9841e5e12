"""The gradient engine: per-task gradients, Gramians, and ``backward`` (``polytask.gradients``)."""

from polytask.gradients.backward import BackwardResult, BalancerError, backward, resolve_level
from polytask.gradients.gramian import flatten_jacobian, gramian
from polytask.gradients.jacobian import feature_jacobian, parameter_jacobian
from polytask.gradients.linear import LinearTaps
from polytask.gradients.losses import LossList, as_loss_list
from polytask.gradients.protocol import LEVELS, BalancerProtocol, Level, Need

__all__ = [
    "LEVELS",
    "BackwardResult",
    "BalancerError",
    "BalancerProtocol",
    "Level",
    "LinearTaps",
    "LossList",
    "Need",
    "as_loss_list",
    "backward",
    "feature_jacobian",
    "flatten_jacobian",
    "gramian",
    "parameter_jacobian",
    "resolve_level",
]
