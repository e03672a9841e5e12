"""A Flower ``Strategy`` that runs a polytask federated algorithm's server side: rounds
planned exactly as :func:`~polytask.federated.rounds.run_rounds` plans them (the same
sample, stragglers and client seeds), the replies aggregated by
:meth:`FederatedAlgorithm.aggregate` in client order, and each evaluation kept per client
(:class:`~polytask.federated.evaluation.ClientScores`), not only as a weighted mean."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from polytask.federated.evaluation import ClientScores
from polytask.federated.flower.environment import flower
from polytask.federated.flower.records import (
    ARRAYS,
    CONFIG,
    EXAMPLES,
    METRICS,
    client_reply,
    from_record,
    to_record,
)
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import FederatedAlgorithm
from polytask.federated.rounds import FederatedRun, RoundConfig, client_seed, plan_round

_Strategy: Any = flower("flwr.serverapp.strategy").Strategy
_app = flower()


def checked(replies: Iterable[Any], expected: dict[int, int], what: str) -> dict[int, Any]:
    """The replies' contents by client index; a client that failed or did not answer is an
    error naming it (never a round aggregated without it in silence)."""
    contents: dict[int, Any] = {}
    for message in replies:
        node = message.metadata.src_node_id
        client = expected.get(node)
        if client is None:
            raise RuntimeError(f"{what}: a reply from node {node}, which was not asked")
        if message.has_error():
            raise RuntimeError(f"{what}: client {client} failed: {message.error.reason}")
        contents[client] = message.content
    missing = sorted(set(expected.values()) - set(contents))
    if missing:
        raise RuntimeError(
            f"{what}: no reply from client(s) {missing} before the timeout (a planned "
            "straggler is left out by the server, never by a lost message)"
        )
    return contents


class PolytaskStrategy(_Strategy):
    """Runs ``algorithm``'s server side on Flower.

    Args:
        algorithm: the federated algorithm (its ``aggregate`` is the server step).
        setup: what the clients share (its ``seed`` and local steps plan the rounds).
        nodes: Flower node id of each client index (``nodes[k]``; see
            :func:`~polytask.federated.flower.server_app.discover_clients`).
        participation: sampling and stragglers (:class:`RoundConfig`).
        evaluate_rounds: the rounds (from 1) after which every client evaluates its model.
        start: a saved run to go on from (its history says how many rounds it has; Flower's
            rounds then count on from there).
        after_round: called with the run (global arrays, history; private state stays on
            the clients) after each round's aggregation: the server's checkpoint.

    Attributes:
        history: per round, each replying client's training metrics.
        scores: per evaluated round, the clients' held-out losses.
    """

    def __init__(
        self,
        algorithm: FederatedAlgorithm,
        setup: ClientSetup,
        nodes: list[int],
        participation: RoundConfig | None = None,
        evaluate_rounds: Iterable[int] = (),
        start: FederatedRun | None = None,
        after_round: Callable[[FederatedRun], None] | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.setup = setup
        self.nodes = list(nodes)
        self.participation = participation or RoundConfig()
        self.evaluate_rounds = set(evaluate_rounds)
        # A copy: the rounds run here must not grow the caller's saved run.
        self.history: list[dict[int, dict[str, float]]] = list(start.history) if start else []
        self.done = len(self.history)  # rounds run before Flower's round 1
        self.after_round = after_round
        self.scores: dict[int, ClientScores] = {}
        self._global: dict[str, np.ndarray] = {}
        self._asked: dict[int, int] = {}

    def _messages(self, record: Any, config: dict, clients: dict[int, int], kind: str) -> list:
        return [
            _app.Message(
                _app.RecordDict({ARRAYS: record, CONFIG: _app.ConfigRecord(config[k])}),
                dst_node_id=node,
                message_type=kind,
            )
            for node, k in clients.items()
        ]

    def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> list:
        """One message per planned client: the global arrays, its seed and its local steps
        (``-1``: as configured)."""
        r = self.done + server_round - 1
        self._global = from_record(arrays)
        planned = plan_round(self.participation, self.setup, r, len(self.nodes))
        self._asked = {self.nodes[k]: k for k in planned.clients}
        settings = {
            k: {**dict(config), "server-round": server_round, "round": r + 1,
                "seed": client_seed(self.setup, r, k), "steps": planned.steps.get(k, -1)}
            for k in planned.clients
        }  # fmt: skip
        return self._messages(arrays, settings, self._asked, _app.MessageType.TRAIN)

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
        """The algorithm's aggregate of the replies in client order (as the core sums
        them); the example-weighted mean of the clients' metrics."""
        contents = checked(replies, self._asked, f"round {server_round}")
        parsed = {k: client_reply(contents[k]) for k in sorted(contents)}
        merged = self.algorithm.aggregate(list(parsed.values()), self._global)
        self.history.append({k: reply.metrics for k, reply in parsed.items()})
        if self.after_round is not None:
            self.after_round(FederatedRun(merged, [], self.history))
        totals: dict[str, float] = {}
        examples = sum(reply.num_examples for reply in parsed.values())
        for reply in parsed.values():
            for name, value in reply.metrics.items():
                totals[name] = totals.get(name, 0.0) + value * reply.num_examples / examples
        return to_record(merged), _app.MetricRecord(totals)

    def configure_evaluate(self, server_round: int, arrays: Any, config: Any, grid: Any) -> list:
        """After the rounds in ``evaluate_rounds``: every client scores its own model."""
        done = self.done + server_round  # rounds run, counted from the run's start
        if done not in self.evaluate_rounds:
            self._asked = {}
            return []
        self._asked = {node: k for k, node in enumerate(self.nodes)}
        every = {**dict(config), "server-round": server_round, "round": done}
        settings = dict.fromkeys(range(len(self.nodes)), every)
        return self._messages(arrays, settings, self._asked, _app.MessageType.EVALUATE)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Any]) -> Any:
        """Keep each client's losses (:attr:`scores`); the weighted mean, mean and bottom
        decile over clients of each task's loss."""
        if not self._asked:
            return None
        contents = checked(replies, self._asked, f"evaluation after round {server_round}")
        losses, examples = [], []
        for k in sorted(contents):
            metrics = dict(contents[k][METRICS])
            examples.append(int(metrics.pop(EXAMPLES)))
            losses.append({name[len("loss/") :]: float(v) for name, v in metrics.items()})
        scores = ClientScores(losses, examples)
        self.scores[self.done + server_round] = scores
        return _app.MetricRecord({
            f"{task}/{name}": value
            for task in losses[0] for name, value in scores.summary(task).items()
        })  # fmt: skip

    def summary(self) -> None:
        """Flower logs this at the start."""
        import logging

        from flwr.supercore import log

        log(logging.INFO, "\t├── polytask algorithm: %s", self.algorithm.name)
        log(logging.INFO, "\t└── clients: %d, %s", len(self.nodes), self.participation)
