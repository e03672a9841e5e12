"""FedPer (Arivazhagan, Aggarwal, Singh & Choudhary, "Federated learning with
personalization layers", 2019): the shared trunk federated, the task heads personal."""

from __future__ import annotations

from typing import Any

from polytask.federated.arrays import (
    Arrays,
    load_arrays,
    model_arrays,
    shared_names,
    weighted_average,
)
from polytask.federated.local_training import ClientSetup, build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


class FedPer(FederatedAlgorithm):
    """Base layers (the parameters every task shares, ``shared_parameters()``) are trained
    by FedAvg; the personalisation layers (each task's head) stay on the client and are
    never sent. A client loads the global trunk and its own heads, trains both, and sends
    the trunk only; the server averages trunks by example counts."""

    name = "fedper"

    def initial_arrays(self, setup: ClientSetup) -> Arrays:
        model = build_model(setup)
        return model_arrays(model, shared_names(model))

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Global trunk + private heads; train; send the trunk, keep the heads."""
        data, setup, seed = where.data, where.setup, where.seed
        model, trunk, heads = self._assemble(global_arrays, private, setup)
        metrics = train_locally(model, setup, data, seed)
        return ClientReply(
            model_arrays(model, trunk), len(data), metrics, private=model_arrays(model, heads)
        )

    @staticmethod
    def _assemble(
        global_arrays: Arrays, private: Arrays, setup: ClientSetup
    ) -> tuple[Any, set[str], set[str]]:
        """The client's model (the global trunk, its own heads; the seed's heads before its
        first round) and the names of the trunk's and the heads' parameters."""
        model = build_model(setup)
        load_arrays(model, global_arrays)
        if private:
            load_arrays(model, private)
        trunk = set(shared_names(model))
        return model, trunk, {name for name, _ in model.named_parameters()} - trunk

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The global trunk with the client's own heads."""
        return {**global_arrays, **private}

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """The example-weighted mean of the trunks."""
        if not replies:
            return global_arrays
        return weighted_average([(r.arrays, float(r.num_examples)) for r in replies])
