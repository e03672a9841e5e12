"""Rounds of a federated algorithm in one process, engine-free: the reference the Flower
adapter must reproduce, and the driver of the core's tests. Each round samples clients and
may make some of them stragglers (MOCHA's systems heterogeneity, Smith et al. 2017)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import Arrays
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


@dataclass
class RoundConfig:
    """Who takes part in a round: a ``fraction`` of the clients sampled at random (at least
    one), of which a ``stragglers`` fraction either ``drop`` out (no reply reaches the
    server) or run ``fewer_steps`` (a random 1 to ``steps - 1`` local steps). Draws are
    seeded by the setup's seed and the round."""

    fraction: float = 1.0
    stragglers: float = 0.0
    straggler_mode: Literal["drop", "fewer_steps"] = "drop"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if not 0 <= self.stragglers < 1:
            raise ValueError(f"stragglers must be in [0, 1), got {self.stragglers}")
        if self.straggler_mode not in ("drop", "fewer_steps"):
            raise ValueError(
                f"straggler_mode must be 'drop' or 'fewer_steps', got {self.straggler_mode!r}"
            )


@dataclass
class FederatedRun:
    """The global arrays after the last round, each client's private state, each round's
    metrics by client index (``history[round][client]``, the clients that replied)."""

    global_arrays: Arrays
    private: list[Arrays]
    history: list[dict[int, dict[str, float]]] = field(default_factory=list)


@dataclass(frozen=True)
class RoundPlan:
    """Who takes part in one round: the ``clients`` whose replies reach the server (sampled
    and not dropped, in index order), and the local ``steps`` of those among them that are
    ``fewer_steps`` stragglers."""

    clients: list[int]
    steps: dict[int, int]


def plan_round(
    plan: RoundConfig, setup: ClientSetup, round_index: int, num_clients: int
) -> RoundPlan:
    """The round's sample and stragglers, drawn from seed ``(setup.seed, round_index)`` so
    that every engine (:func:`run_rounds`, the Flower strategy) plans alike."""
    g = np.random.default_rng([setup.seed, round_index])
    count = max(1, round(plan.fraction * num_clients))
    sampled = sorted(g.choice(num_clients, size=count, replace=False).tolist())
    slow = set(g.choice(sampled, size=int(plan.stragglers * count), replace=False).tolist())
    clients, steps = [], {}
    for k in sampled:
        if k in slow:
            if plan.straggler_mode == "drop":
                continue
            steps[k] = int(g.integers(1, max(setup.local.steps, 2)))
        clients.append(k)
    return RoundPlan(clients, steps)


def client_seed(setup: ClientSetup, round_index: int, client: int) -> int:
    """The seed of client ``client``'s draws in round ``round_index``."""
    return setup.seed + 1000 * round_index + client


def with_steps(setup: ClientSetup, steps: int | None) -> ClientSetup:
    """``setup`` with ``steps`` local steps (a straggler's; they replace local epochs), or
    ``setup`` itself."""
    if steps is None:
        return setup
    local = dataclasses.replace(setup.local, steps=steps, epochs=None)
    return dataclasses.replace(setup, local=local)


def run_rounds(
    algorithm: FederatedAlgorithm,
    clients: Sequence[TensorTaskDataset],
    setup: ClientSetup,
    rounds: int,
    participation: RoundConfig | None = None,
    start: FederatedRun | None = None,
    after_round: Callable[[FederatedRun], None] | None = None,
) -> FederatedRun:
    """Rounds planned by :func:`plan_round` until ``rounds`` have run; client ``k`` in round
    ``r`` draws its batches with seed :func:`client_seed` (the same in any engine); a client
    that is not sampled, or drops, keeps its private state. ``start``: a run to go on from
    (its ``history`` says how many rounds it has; every draw depends only on the seed, the
    round and the client, so going on from a saved run equals never stopping).
    ``after_round`` is called with the run after each round (a checkpoint)."""
    plan = participation or RoundConfig()
    state = start or FederatedRun(algorithm.initial_arrays(setup), [{} for _ in clients])
    if len(state.private) != len(clients):
        raise ValueError(f"the run has {len(state.private)} clients, the data {len(clients)}")
    for r in range(len(state.history), rounds):
        planned = plan_round(plan, setup, r, len(clients))
        replies: list[ClientReply] = []
        metrics: dict[int, dict[str, float]] = {}
        for k in planned.clients:
            where = ClientRound(
                clients[k], with_steps(setup, planned.steps.get(k)), client_seed(setup, r, k), k
            )
            reply = algorithm.client_update(state.global_arrays, state.private[k], where)
            state.private[k] = reply.private
            replies.append(reply)
            metrics[k] = reply.metrics
        state.global_arrays = algorithm.aggregate(replies, state.global_arrays)
        state.history.append(metrics)
        if after_round is not None:
            after_round(state)
    return state
