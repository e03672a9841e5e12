"""Federated multi-task learning (``polytask.federated``).

Clients that share parameters but not data (reference text 01): a client update
``(global arrays, private state, ClientRound) -> (arrays, metrics, private state)``
and a server aggregation ``(replies) -> global arrays`` per algorithm, plain functions of
named numpy arrays, tested without any engine. :func:`~polytask.federated.rounds.run_rounds`
drives them in one process, sampling clients each round and making some stragglers
(:class:`~polytask.federated.rounds.RoundConfig`). Each client trains a polytask model with
any balancer at either level, so a client with several tasks is a multi-task learner.

Algorithms so far: :class:`Local` (no communication), :class:`FedAvg`, :class:`FedAvgPlus`
(fine-tuned after FedAvg), :class:`FedProx`, :class:`FedPer` and :class:`FedRep` (heads
kept on the client), :class:`Ditto` and :class:`MRMTL` (personal models pulled towards the
global or the mean model), :class:`FedEM` (a mixture of shared components, private mixture
weights), :class:`MOCHA` (each client its own model, their covariance learned with MTRL's
step), :class:`PFedMe` (personal models from Moreau envelopes). :func:`evaluate_clients`
scores each client's own model and summarises the distribution over clients (bottom
decile). :mod:`~polytask.data.client_splits` makes clients: natural ones (each task of
per-task data) and a Dirichlet label skew.

On top of the core: :mod:`polytask.federated.flower` (Flower's ``ClientApp`` /
``ServerApp`` / ``Strategy`` built from it, equal to :func:`run_rounds` bit for bit),
:func:`polytask.federated.run.run_federated` (``polytask federate``: clients from a data
set, resumable run folders, per-client reports).
"""

from __future__ import annotations

from polytask.federated.ditto import Ditto
from polytask.federated.evaluation import ClientScores, evaluate_clients
from polytask.federated.fedavg import FedAvg
from polytask.federated.fedavg_plus import FedAvgPlus
from polytask.federated.fedem import FedEM
from polytask.federated.fedper import FedPer
from polytask.federated.fedprox import FedProx
from polytask.federated.fedrep import FedRep
from polytask.federated.local import Local
from polytask.federated.local_training import ClientSetup, LocalConfig
from polytask.federated.mocha import MOCHA
from polytask.federated.mr_mtl import MRMTL
from polytask.federated.pfedme import PFedMe
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm
from polytask.federated.registry import ALGORITHMS, create
from polytask.federated.rounds import run_rounds

__all__ = [
    "ALGORITHMS",
    "MOCHA",
    "MRMTL",
    "ClientReply",
    "ClientRound",
    "ClientScores",
    "ClientSetup",
    "Ditto",
    "FedAvg",
    "FedAvgPlus",
    "FedEM",
    "FedPer",
    "FedProx",
    "FedRep",
    "FederatedAlgorithm",
    "Local",
    "LocalConfig",
    "PFedMe",
    "create",
    "evaluate_clients",
    "run_rounds",
]
