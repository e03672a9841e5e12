"""Ditto (Li, Hu, Beirami & Smith, "Ditto: fair and robust federated learning through
personalization", ICML 2021)."""

from __future__ import annotations

from polytask.federated.arrays import Arrays, load_arrays, model_arrays
from polytask.federated.fedavg import FedAvg
from polytask.federated.local_training import build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound


class Ditto(FedAvg):
    """Each client keeps a personal model ``v_k`` next to the global one: every round it
    (1) trains the global model as FedAvg does and sends it, and (2) trains ``v_k`` on
    ``F_k(v) + (lam / 2) ||v - w_global||^2`` (Algorithm 1, the personal step with the
    global model it received). ``lam = 0`` is local training; ``lam -> inf`` keeps ``v_k``
    at the global model. The server averages as FedAvg.

    Args:
        lam: strength of the pull towards the global model (>= 0; the paper tunes it in
            {0.05, 0.1, 0.2, 0.5, 1, 2}; default 0.1).
    """

    name = "ditto"

    def __init__(self, lam: float = 0.1) -> None:
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """The FedAvg update of the global model, then the personal model's step."""
        data, setup, seed = where.data, where.setup, where.seed
        reply = super().client_update(global_arrays, private, where)
        personal = build_model(setup)
        load_arrays(personal, private or global_arrays)  # v_k starts at the first global
        proximal = (self.lam, global_arrays) if self.lam > 0 else None
        metrics = train_locally(personal, setup, data, seed + 1, proximal)
        reply.private = model_arrays(personal)
        reply.metrics.update({f"personal/{k}": v for k, v in metrics.items()})
        return reply

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The personal model ``v_k``."""
        return private or global_arrays
