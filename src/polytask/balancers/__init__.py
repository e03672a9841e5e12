"""Balancers: loss weightings and gradient methods (``polytask.balancers``).

Every method is one module, registered by name::

    balancer = polytask.balancers.create("mgda")
    polytask.balancers.available()   # ['equal', 'fixed', 'mgda', 'pcgrad', ...]
"""

from polytask.balancers import (  # noqa: F401  (registration)
    db_mtl,
    dtp,
    dwa,
    equal,
    famo,
    fixed,
    gradient_norm,
    gradnorm,
    imtl_l,
    initial_loss,
    lbtw,
    mgda,
    pcgrad,
    prior_loss,
    realtime_loss,
    rlw,
    uncertainty,
)
from polytask.balancers.base import (
    Balancer,
    GramianWeighting,
    JacobianAggregation,
    LossWeighting,
)
from polytask.balancers.equal import EqualWeighting
from polytask.balancers.fixed import FixedWeights
from polytask.balancers.mgda import MGDA
from polytask.balancers.pcgrad import PCGrad
from polytask.balancers.registry import BALANCERS, available, create, describe

__all__ = [
    "BALANCERS",
    "MGDA",
    "Balancer",
    "EqualWeighting",
    "FixedWeights",
    "GramianWeighting",
    "JacobianAggregation",
    "LossWeighting",
    "PCGrad",
    "available",
    "create",
    "describe",
]
