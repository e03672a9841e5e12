"""Rounds of a federated algorithm in one process, engine-free: the reference the Flower
adapter must reproduce, and the driver of the core's tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import Arrays
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import ClientReply, FederatedAlgorithm


@dataclass
class FederatedRun:
    """The global arrays after the last round, each client's private state, and each
    round's replies' metrics (``history[round][client]``)."""

    global_arrays: Arrays
    private: list[Arrays]
    history: list[list[dict[str, float]]] = field(default_factory=list)


def run_rounds(
    algorithm: FederatedAlgorithm,
    clients: Sequence[TensorTaskDataset],
    setup: ClientSetup,
    rounds: int,
) -> FederatedRun:
    """``rounds`` rounds with every client taking part; client ``k`` in round ``r`` draws
    its batches with seed ``setup.seed + 1000 r + k`` (the same in any engine)."""
    state = FederatedRun(algorithm.initial_arrays(setup), [{} for _ in clients])
    for r in range(rounds):
        replies: list[ClientReply] = []
        for k, data in enumerate(clients):
            reply = algorithm.client_update(
                state.global_arrays, state.private[k], data, setup, setup.seed + 1000 * r + k
            )
            state.private[k] = reply.private
            replies.append(reply)
        state.global_arrays = algorithm.aggregate(replies, state.global_arrays)
        state.history.append([reply.metrics for reply in replies])
    return state
