"""Balancers: loss weightings and gradient methods (``polytask.balancers``).

Every method is one module, registered by name::

    balancer = polytask.balancers.create("mgda")
    polytask.balancers.available()   # ['equal', 'fixed', 'mgda', 'pcgrad', ...]
"""

from polytask.balancers import (  # noqa: F401  (registration)
    aligned_mtl,
    cagrad,
    db_mtl,
    dtp,
    dualproj,
    dwa,
    epo,
    equal,
    fairgrad,
    famo,
    fixed,
    graddrop,
    gradient_norm,
    gradnorm,
    gradvac,
    imtl_g,
    imtl_l,
    initial_loss,
    lbtw,
    mgda,
    mgda_ub,
    nash_mtl,
    pareto_mtl,
    pcgrad,
    pe_ltr,
    primary_auxiliary,
    prior_loss,
    realtime_loss,
    rlw,
    uncertainty,
    upgrad,
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
