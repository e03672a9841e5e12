"""Refusing what data parallelism would silently change.

Under ``torch.distributed`` with several ranks, each rank sees its own slice of the batch. A
balancer whose weights depend on the batch (its losses, its Gramian or its Jacobian) then
weighs each rank's *local* quantities, and DDP averages differently weighted gradients: a
different algorithm from the single-process one, with no error (measured 6.2e-3 away for a
Gramian method at the representation level). Until polytask reduces what each method needs
across ranks (issue 17), :func:`refuse_on_several_ranks` turns that silent change into an
error; methods that declare ``constant_weights`` are exact under data parallelism and run.
"""

from __future__ import annotations

from typing import Any

import torch


class DistributedBalancerError(ValueError):
    """A balancer that is not exact under data parallelism, used on several ranks."""


def world_size() -> int:
    """The number of ranks of the default process group (1 without one)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def refuse_on_several_ranks(balancer: Any) -> None:
    """Raise :class:`DistributedBalancerError` when ``balancer`` would run on several ranks
    and its weights depend on the batch (it does not declare ``constant_weights``)."""
    ranks = world_size()
    if ranks <= 1 or "constant_weights" in getattr(balancer, "properties", ()):
        return
    from polytask.balancers.registry import name_of, with_property

    raise DistributedBalancerError(
        f"{name_of(balancer)} weighs each rank's own losses or gradients, so on {ranks} ranks "
        "data-parallel training would silently change the method (DDP averages differently "
        "weighted gradients). Exact distributed support for such methods is not built yet; "
        f"use a method with constant weights ({', '.join(with_property('constant_weights'))}) "
        "or train in one process"
    )
