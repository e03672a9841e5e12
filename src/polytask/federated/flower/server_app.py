"""The Flower ``ServerApp`` of a polytask federated run: it finds which node is which
client (a ``query`` to every node), then runs :class:`PolytaskStrategy` for the rounds,
and keeps the outcome (global arrays, per-round client metrics, per-client scores)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from polytask.federated.arrays import Arrays
from polytask.federated.evaluation import ClientScores
from polytask.federated.flower.client_app import PARTITION
from polytask.federated.flower.environment import flower
from polytask.federated.flower.records import METRICS, from_record, to_record
from polytask.federated.flower.strategy import PolytaskStrategy, checked
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import FederatedAlgorithm
from polytask.federated.rounds import FederatedRun, RoundConfig


def discover_clients(grid: Any, expected: int, timeout: float = 120.0) -> list[int]:
    """The Flower node id of each client index ``0 .. expected - 1``: waits (up to
    ``timeout`` seconds) for ``expected`` nodes, asks each for its ``partition-id``, and
    checks that every index is there exactly once."""
    app = flower()
    deadline = time.monotonic() + timeout
    while len(nodes := list(grid.get_node_ids())) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(nodes)} of the {expected} client nodes this run needs connected in "
                f"{timeout:g} s: start one SuperNode per client (partition-id 0..{expected - 1}"
                f"), or for Flower's local simulation set num-supernodes = {expected}"
            )
        time.sleep(0.2)
    messages = [
        app.Message(app.RecordDict(), dst_node_id=node, message_type=app.MessageType.QUERY)
        for node in nodes
    ]
    contents = checked(
        grid.send_and_receive(messages, timeout=timeout),
        {node: node for node in nodes},
        "finding the clients",
    )
    index = {node: int(content[METRICS][PARTITION]) for node, content in contents.items()}
    found = sorted(index.values())
    if found != list(range(expected)):
        raise ValueError(
            f"the nodes' partition ids are {found}; expected each of 0..{expected - 1} once "
            "(num-partitions must equal the number of clients)"
        )
    return [node for node, _ in sorted(index.items(), key=lambda item: item[1])]


@dataclass
class FlowerServer:
    """What the ``ServerApp`` runs, and (after :meth:`app` has run) what came of it.

    Args:
        algorithm, setup: as for :func:`~polytask.federated.rounds.run_rounds`.
        rounds: number of rounds.
        num_clients: the clients (nodes) taking part.
        participation: sampling and stragglers.
        evaluate_rounds: rounds after which the clients evaluate (default: the last).
        timeout: seconds to wait for the replies of one round.
        start: a saved run to go on from (see :class:`PolytaskStrategy`).
        after_round: the server's checkpoint after each round.

    Attributes (after the run):
        global_arrays: the server's arrays after the last round.
        history: each round's training metrics per replying client.
        scores: per evaluated round, :class:`ClientScores`.
    """

    algorithm: FederatedAlgorithm
    setup: ClientSetup
    rounds: int
    num_clients: int
    participation: RoundConfig | None = None
    evaluate_rounds: Iterable[int] | None = None
    timeout: float = 600.0
    start: FederatedRun | None = None
    after_round: Callable[[FederatedRun], None] | None = None
    global_arrays: Arrays = field(default_factory=dict)
    history: list[dict[int, dict[str, float]]] = field(default_factory=list)
    scores: dict[int, ClientScores] = field(default_factory=dict)

    def run(self, grid: Any) -> None:
        """The ``ServerApp``'s main: find the clients, run the rounds, keep the outcome."""
        nodes = discover_clients(grid, self.num_clients, self.timeout)
        evaluate = (self.rounds,) if self.evaluate_rounds is None else self.evaluate_rounds
        strategy = PolytaskStrategy(self.algorithm, self.setup, nodes, self.participation,
                                    evaluate, self.start, self.after_round)  # fmt: skip
        first = (
            self.algorithm.initial_arrays(self.setup)
            if self.start is None
            else self.start.global_arrays
        )
        result = strategy.start(
            grid, to_record(first), num_rounds=self.rounds - strategy.done, timeout=self.timeout
        )
        self.global_arrays = from_record(result.arrays)
        self.history = strategy.history
        self.scores = strategy.scores

    def app(self) -> Any:
        """The ``ServerApp``."""
        app = flower("flwr.serverapp").ServerApp()

        @app.main()
        def main(grid: Any, context: Any) -> None:
            self.run(grid)

        return app
