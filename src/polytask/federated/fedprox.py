"""FedProx (Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith, "Federated optimization in
heterogeneous networks", MLSys 2020)."""

from __future__ import annotations

from polytask.federated.arrays import Arrays
from polytask.federated.fedavg import FedAvg


class FedProx(FedAvg):
    """FedAvg whose clients minimise ``F_k(w) + (mu / 2) ||w - w_global||^2``: the
    proximal term keeps heterogeneous clients near the global model (eq. 2). The client
    adds the term itself (Flower's FedProx strategy only sends ``proximal-mu``); the server
    averages as FedAvg. ``mu = 0`` is FedAvg.

    Args:
        mu: strength of the proximal term (>= 0; the paper tunes it in {0.001, 0.01, 0.1,
            1}; default 0.01).
    """

    name = "fedprox"

    def __init__(self, mu: float = 0.01) -> None:
        if not mu >= 0:
            raise ValueError(f"mu must be >= 0, got {mu}")
        self.mu = mu

    def _proximal(self, global_arrays: Arrays) -> tuple[float, Arrays] | None:
        return (self.mu, global_arrays) if self.mu > 0 else None
