"""FedRep (Collins, Hassani, Mokhtari & Shakkottai, "Exploiting shared representations for
personalized federated learning", ICML 2021)."""

from __future__ import annotations

from polytask.federated.arrays import Arrays, model_arrays
from polytask.federated.fedper import FedPer
from polytask.federated.local_training import train_locally
from polytask.federated.protocol import ClientReply, ClientRound


class FedRep(FedPer):
    """As :class:`~polytask.federated.FedPer` (shared trunk federated, heads private), but
    each round first trains the client's heads for ``head_steps`` with the trunk frozen,
    then the trunk for the local steps with the heads frozen (Algorithm 1: many head
    updates, then one pass for the representation); only the trunk is sent.

    Args:
        head_steps: head-only steps per round (>= 0; default 10, the paper's ``tau_h``
            epochs scaled to steps).
    """

    name = "fedrep"

    def __init__(self, head_steps: int = 10) -> None:
        if head_steps < 0:
            raise ValueError(f"head_steps must be >= 0, got {head_steps}")
        self.head_steps = head_steps

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Heads with the trunk frozen, then the trunk with the heads frozen."""
        data, setup, seed = where.data, where.setup, where.seed
        model, trunk, heads = self._assemble(global_arrays, private, setup)
        head_metrics = train_locally(model, setup, data, seed, frozen=trunk, steps=self.head_steps)
        metrics = train_locally(model, setup, data, seed + 1, frozen=heads)
        metrics.update({f"heads/{k}": v for k, v in head_metrics.items()})
        return ClientReply(
            model_arrays(model, trunk), len(data), metrics, private=model_arrays(model, heads)
        )
