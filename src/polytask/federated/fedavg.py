"""FedAvg (McMahan, Moore, Ramage, Hampson & Agüera y Arcas, "Communication-efficient
learning of deep networks from decentralized data", AISTATS 2017)."""

from __future__ import annotations

from polytask.federated.arrays import Arrays, load_arrays, model_arrays, weighted_average
from polytask.federated.local_training import build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


class FedAvg(FederatedAlgorithm):
    """Every client starts from the global model, trains locally
    (:class:`~polytask.federated.local_training.LocalConfig`: ``E`` local steps of SGD) and
    sends all its parameters; the server averages them weighted by the clients' example
    counts ``n_k``: ``w = sum_k n_k w_k / sum_k n_k`` (Algorithm 1)."""

    name = "fedavg"

    def _proximal(self, global_arrays: Arrays) -> tuple[float, Arrays] | None:
        return None  # FedProx adds (mu / 2) ||w - w_global||^2

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Load the global model, train, send every parameter."""
        data, setup, seed = where.data, where.setup, where.seed
        model = build_model(setup)
        load_arrays(model, global_arrays)
        metrics = train_locally(model, setup, data, seed, self._proximal(global_arrays))
        return ClientReply(model_arrays(model), len(data), metrics)

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """The example-weighted mean of the replies (the global arrays if none came)."""
        if not replies:
            return global_arrays
        return weighted_average([(r.arrays, float(r.num_examples)) for r in replies])
