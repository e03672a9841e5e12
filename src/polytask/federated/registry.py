"""Every federated algorithm by name (for ``polytask federate`` and the shared checks,
which run each registered algorithm: a new one is an entry here, never an edit to a
test list)."""

from __future__ import annotations

from collections.abc import Callable

from polytask.federated.ditto import Ditto
from polytask.federated.fedavg import FedAvg
from polytask.federated.fedavg_plus import FedAvgPlus
from polytask.federated.fedem import FedEM
from polytask.federated.fedper import FedPer
from polytask.federated.fedprox import FedProx
from polytask.federated.fedrep import FedRep
from polytask.federated.local import Local
from polytask.federated.mocha import MOCHA
from polytask.federated.mr_mtl import MRMTL
from polytask.federated.pfedme import PFedMe
from polytask.federated.protocol import FederatedAlgorithm

ALGORITHMS: dict[str, Callable[..., FederatedAlgorithm]] = {
    cls.name: cls
    for cls in (
        Local,
        FedAvg,
        FedAvgPlus,
        FedProx,
        FedPer,
        FedRep,
        Ditto,
        MRMTL,
        PFedMe,
        FedEM,
        MOCHA,
    )
}
"""Name -> algorithm class (its constructor's keyword arguments are its options)."""


def create(name: str, **options: object) -> FederatedAlgorithm:
    """The algorithm ``name`` with ``options``; an unknown name is an error with the
    closest names."""
    if name not in ALGORITHMS:
        from polytask._registry import unknown_name_message

        raise KeyError(unknown_name_message("federated algorithm", name, list(ALGORITHMS)))
    return ALGORITHMS[name](**options)
