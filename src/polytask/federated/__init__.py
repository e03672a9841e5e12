"""Federated multi-task learning (``polytask.federated``): the engine-free core.

Clients that share parameters but not data (reference text 01): a client update
``(global arrays, private state, local data, setup) -> (arrays, metrics, private state)``
and a server aggregation ``(replies) -> global arrays`` per algorithm, plain functions of
named numpy arrays, tested without any engine; :func:`~polytask.federated.rounds.run_rounds`
drives them in one process. Each client trains a polytask model with any balancer at either
level, so a client with several tasks is a multi-task learner.

Algorithms so far: :class:`Local` (no communication), :class:`FedAvg`, :class:`FedProx`,
:class:`FedPer` (heads kept on the client). The Flower adapter, the personalised methods
(Ditto, MR-MTL, pFedMe, FedEM, MOCHA, FedRep, FedAvg+) and ``polytask federate`` are not
built yet (issue 18).
"""

from __future__ import annotations

from polytask.federated.fedavg import FedAvg
from polytask.federated.fedper import FedPer
from polytask.federated.fedprox import FedProx
from polytask.federated.local import Local
from polytask.federated.local_training import ClientSetup, LocalConfig
from polytask.federated.protocol import ClientReply, FederatedAlgorithm
from polytask.federated.rounds import run_rounds

__all__ = [
    "ClientReply",
    "ClientSetup",
    "FedAvg",
    "FedPer",
    "FedProx",
    "FederatedAlgorithm",
    "Local",
    "LocalConfig",
    "run_rounds",
]
