"""The engine-free federated protocol: a client update and a server aggregation per
algorithm, plain functions of arrays so that they are tested without Flower and run inside
Flower's ``ClientApp`` / ``ServerApp`` (private client state in ``context.state``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import Arrays, load_arrays, model_arrays
from polytask.federated.local_training import ClientSetup, build_model


@dataclass(frozen=True)
class ClientRound:
    """Where a client update runs: the client's ``data``, the ``setup`` every client
    shares, the ``seed`` of its draws in this round, and its index ``client`` (Flower's
    partition id; an algorithm with per-client server state, MOCHA, needs it)."""

    data: TensorTaskDataset
    setup: ClientSetup
    seed: int
    client: int | None = None


@dataclass
class ClientReply:
    """What a client returns after a round: the arrays it sends (only those the algorithm
    shares), its example count (the aggregation weight), metrics, and the private state it
    keeps for the next round (never sent)."""

    arrays: Arrays
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    private: Arrays = field(default_factory=dict)


class FederatedAlgorithm:
    """One federated algorithm: :meth:`client_update` runs on a client, :meth:`aggregate`
    on the server. ``initial_arrays`` is what the server sends in the first round."""

    name: str = ""

    def initial_arrays(self, setup: ClientSetup) -> Arrays:
        """The server's first global arrays: the model ``setup.make_model`` builds from
        ``setup.seed`` (every run with one seed starts alike); an algorithm that shares less
        (or more) says so."""
        return model_arrays(build_model(setup))

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Train on the client's data (:class:`ClientRound`) from the server's arrays and
        its ``private`` state."""
        raise NotImplementedError

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """The next global arrays from the clients' replies."""
        raise NotImplementedError

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The model a client uses (and is evaluated with): the global model, unless the
        algorithm personalises it (its private state, its own heads, a fine-tuning)."""
        return global_arrays

    def personal_predictions(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound, inputs: Any
    ) -> Mapping[str, Tensor]:
        """The client's predictions ``{task: prediction}`` for ``inputs`` (what its losses
        and metrics read): its personal model's, or a mixture's (FedEM)."""
        model = build_model(where.setup)
        load_arrays(model, self.personal_arrays(global_arrays, private, where))
        model.eval()
        with torch.no_grad():
            return dict(model(inputs).predictions)
