"""Local training only: each client keeps its own model and never communicates; the
baseline every personalised method must beat (Smith et al. 2017; Marfoq et al. 2021)."""

from __future__ import annotations

from polytask.federated.arrays import Arrays, load_arrays, model_arrays
from polytask.federated.local_training import ClientSetup, build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


class Local(FederatedAlgorithm):
    """Each client trains its private model, started from the seed's model; it sends
    nothing and the server keeps nothing."""

    name = "local"

    def initial_arrays(self, setup: ClientSetup) -> Arrays:
        return {}

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Train the private model (the seed's model in the first round); send nothing."""
        data, setup, seed = where.data, where.setup, where.seed
        model = build_model(setup)
        if private:
            load_arrays(model, private)
        metrics = train_locally(model, setup, data, seed)
        return ClientReply({}, len(data), metrics, private=model_arrays(model))

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """Nothing to aggregate."""
        return global_arrays

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The client's own model (the seed's model before any round)."""
        setup = where.setup
        if private:
            return private
        return model_arrays(build_model(setup))
