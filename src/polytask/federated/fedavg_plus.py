"""FedAvg+ (Jiang, Konečný, Rush & Kannan, "Improving federated learning personalization via
model agnostic meta learning", 2019): FedAvg, then a local fine-tuning for each client."""

from __future__ import annotations

from polytask.federated.arrays import Arrays, load_arrays, model_arrays
from polytask.federated.fedavg import FedAvg
from polytask.federated.local_training import build_model, train_locally
from polytask.federated.protocol import ClientRound


class FedAvgPlus(FedAvg):
    """Trains as :class:`~polytask.federated.FedAvg`; a client's model is the global one
    fine-tuned for ``finetune_steps`` local steps on its own data (the personalisation the
    paper evaluates).

    Args:
        finetune_steps: local steps of the fine-tuning (>= 0; default 20).
    """

    name = "fedavg_plus"

    def __init__(self, finetune_steps: int = 20) -> None:
        if finetune_steps < 0:
            raise ValueError(f"finetune_steps must be >= 0, got {finetune_steps}")
        self.finetune_steps = finetune_steps

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The global model fine-tuned on ``data`` (the client's training rows)."""
        data, setup, seed = where.data, where.setup, where.seed
        model = build_model(setup)
        load_arrays(model, global_arrays)
        train_locally(model, setup, data, seed, steps=self.finetune_steps)
        return model_arrays(model)
