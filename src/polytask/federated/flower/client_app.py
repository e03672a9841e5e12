"""A Flower ``ClientApp`` built from a polytask federated algorithm: each SuperNode is one
client (Flower's ``partition-id``), trains with :meth:`FederatedAlgorithm.client_update`,
keeps its private state in ``context.state`` (never sent), and scores its own model on its
held-out rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import Arrays
from polytask.federated.checkpoint import ClientStates
from polytask.federated.evaluation import client_losses, evaluation_round
from polytask.federated.flower.environment import flower
from polytask.federated.flower.records import (
    ARRAYS,
    CONFIG,
    EXAMPLES,
    METRICS,
    from_record,
    reply_content,
    to_record,
)
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import ClientRound, FederatedAlgorithm
from polytask.federated.rounds import with_steps

PRIVATE = "polytask.private"  # the key of a client's private arrays in context.state
PARTITION = "partition-id"  # Flower's node_config key of the client's index


@dataclass(frozen=True)
class ClientData:
    """One client's rows: ``train`` (what it trains on) and ``evaluate`` (its held-out
    rows, or ``None``)."""

    train: TensorTaskDataset
    evaluate: TensorTaskDataset | None = None


ClientSource = Callable[[int], ClientData]


def client_source(
    train: Sequence[TensorTaskDataset], evaluate: Sequence[TensorTaskDataset] | None = None
) -> ClientSource:
    """A :data:`ClientSource` over lists of the clients' training (and held-out) rows."""
    if evaluate is not None and len(evaluate) != len(train):
        raise ValueError(f"{len(train)} clients' training rows but {len(evaluate)} held out")

    def data(partition: int) -> ClientData:
        return ClientData(train[partition], None if evaluate is None else evaluate[partition])

    return data


def partition_of(context: Any) -> int:
    """The client's index: Flower's ``node_config["partition-id"]`` (set by the
    simulation engine, and by ``flower-supernode --node-config "partition-id=K"``)."""
    if PARTITION not in context.node_config:
        raise KeyError(
            "this SuperNode has no 'partition-id' in its node config: start it with "
            "--node-config 'partition-id=K num-partitions=N'"
        )
    return int(context.node_config[PARTITION])


def make_client_app(
    algorithm: FederatedAlgorithm,
    setup: ClientSetup,
    data: ClientSource,
    state_dir: str | Path | None = None,
) -> Any:
    """The ``ClientApp``: ``query`` replies the client's index and example count, ``train``
    runs one client update (seed and local steps from the message's config, as the server
    planned them), ``evaluate`` replies the client's mean loss per task on its held-out
    rows (``loss/<task>``). With ``state_dir`` each client also writes its private state
    there after every round (:class:`~polytask.federated.checkpoint.ClientStates`) and,
    started afresh (an empty ``context.state``), reads back its newest state from before
    the round it is asked to run: what makes a federated run resumable."""
    app_module = flower()
    client_app_module = flower("flwr.clientapp")
    app = client_app_module.ClientApp()
    states = None if state_dir is None else ClientStates(state_dir)

    def private_state(context: Any, k: int, before_round: int) -> Arrays:
        if PRIVATE in context.state:
            return from_record(context.state[PRIVATE])
        return {} if states is None else states.load(k, before_round)

    @app.query()
    def query(message: Any, context: Any) -> Any:
        k = partition_of(context)
        record = app_module.MetricRecord({PARTITION: k, EXAMPLES: len(data(k).train)})
        return app_module.Message(app_module.RecordDict({METRICS: record}), reply_to=message)

    @app.train()
    def train(message: Any, context: Any) -> Any:
        k = partition_of(context)
        config = message.content[CONFIG]
        steps = int(config["steps"])
        where = ClientRound(
            data(k).train, with_steps(setup, steps if steps >= 0 else None), int(config["seed"]), k
        )
        global_arrays = from_record(message.content[ARRAYS])
        done = int(config["round"]) - 1  # rounds completed before this one
        reply = algorithm.client_update(global_arrays, private_state(context, k, done), where)
        context.state[PRIVATE] = to_record(reply.private)
        if states is not None:
            states.save(k, done + 1, reply.private)
        return app_module.Message(reply_content(reply), reply_to=message)

    @app.evaluate()
    def evaluate(message: Any, context: Any) -> Any:
        k = partition_of(context)
        rows = data(k)
        if rows.evaluate is None:
            raise ValueError(f"client {k} has no held-out rows to evaluate on")
        losses = client_losses(
            algorithm,
            from_record(message.content[ARRAYS]),
            private_state(context, k, int(message.content[CONFIG]["round"])),
            evaluation_round(setup, rows.train, k),
            rows.evaluate,
        )
        record = app_module.MetricRecord(
            {**{f"loss/{t}": v for t, v in losses.items()}, EXAMPLES: len(rows.evaluate)}
        )
        return app_module.Message(app_module.RecordDict({METRICS: record}), reply_to=message)

    return app


__all__ = ["ClientData", "client_source", "make_client_app"]
