"""Refusing what data parallelism would silently change.

Under ``torch.distributed`` with several ranks, each rank sees its own slice of the batch. A
balancer whose weights depend on the batch (its losses, its Gramian or its Jacobian) then
weighs each rank's *local* quantities, and DDP averages differently weighted gradients: a
different algorithm from the single-process one, with no error (measured 6.2e-3 away for a
Gramian method at the representation level). :func:`reduction_for` lets a step run on
several ranks only where it is exact:

- with :mod:`polytask.distributed` enabled (it installs the reductions of
  :mod:`polytask.gradients.ranks`): every loss weighting, Gramian method and Jacobian
  method, at either level;
- without it: methods that declare ``constant_weights`` (exact for equal shards without
  missing labels, as plain DDP is).

Everything else raises :class:`DistributedBalancerError` naming the way out.
"""

from __future__ import annotations

from typing import Any

import torch

from polytask.gradients.ranks import RankReduction, installed


class DistributedBalancerError(ValueError):
    """A balancer that is not exact under data parallelism, used on several ranks."""


def world_size() -> int:
    """The number of ranks of the default process group (1 without one)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def exact_with_reduction(balancer: Any) -> bool:
    """Whether the installed reductions make ``balancer`` exact on several ranks: loss
    weightings, Gramian methods and Jacobian methods, at either level."""
    return getattr(balancer, "needs", None) in ("losses", "gramian", "jacobian")


def reduction_for(balancer: Any) -> RankReduction | None:
    """The reduction a step of ``balancer`` needs at either level (``None`` on one rank, or for
    a constant-weight method without :mod:`polytask.distributed`); raises
    :class:`DistributedBalancerError` where several ranks would change the method."""
    ranks = world_size()
    if ranks <= 1:
        return None
    from polytask.balancers.registry import name_of, with_property

    reduction = installed()
    name = name_of(balancer)
    if reduction is not None:
        if exact_with_reduction(balancer):
            return reduction
        raise DistributedBalancerError(
            f"{name} needs {getattr(balancer, 'needs', None)!r}, which polytask.distributed "
            "does not reduce across ranks (it reduces what loss weightings, Gramian methods "
            "and Jacobian methods need); train this one in one process"
        )
    if "constant_weights" in getattr(balancer, "properties", ()):
        return None
    raise DistributedBalancerError(
        f"{name} weighs each rank's own losses or gradients, so on {ranks} ranks "
        "data-parallel training would silently change the method (DDP averages differently "
        "weighted gradients). Call polytask.distributed.enable() after "
        "init_process_group (or use polytask.distributed.init()) to make it exact, or use a "
        f"method with constant weights ({', '.join(with_property('constant_weights'))})"
    )
