"""MR-MTL: mean-regularised multi-task learning across clients (Evgeniou & Pontil, KDD
2004, federated as in Liu, Hu, Wu & Smith, "On privacy and personalization in cross-silo
federated learning", NeurIPS 2022)."""

from __future__ import annotations

from polytask.federated.arrays import Arrays, load_arrays, model_arrays, weighted_average
from polytask.federated.local_training import build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


class MRMTL(FederatedAlgorithm):
    """Every client keeps its own model ``v_k`` and trains it on ``F_k(v) + (lam / 2)
    ||v - v_bar||^2``, ``v_bar`` the mean of the clients' models the server sent; the
    server's ``v_bar`` is the example-weighted mean of the models they send back: the
    federated form of :class:`~polytask.classic.MeanRegularizedMTL`. ``lam = 0`` is
    local training (each client alone); as ``lam`` grows the clients' models agree.

    Args:
        lam: strength of the pull towards the mean (>= 0; default 0.1).
    """

    name = "mr_mtl"

    def __init__(self, lam: float = 0.1) -> None:
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Train the own model towards the mean; send it and keep it."""
        data, setup, seed = where.data, where.setup, where.seed
        model = build_model(setup)
        load_arrays(model, private or global_arrays)
        proximal = (self.lam, global_arrays) if self.lam > 0 else None
        metrics = train_locally(model, setup, data, seed, proximal)
        arrays = model_arrays(model)
        return ClientReply(arrays, len(data), metrics, private=arrays)

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """The example-weighted mean of the clients' models."""
        if not replies:
            return global_arrays
        return weighted_average([(r.arrays, float(r.num_examples)) for r in replies])

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The client's own model."""
        return private or global_arrays
