"""polytask's federated messages as Flower records: named numpy arrays as an
``ArrayRecord`` (bit for bit, dtype kept), a client reply as a ``RecordDict`` (the arrays,
and a ``MetricRecord`` with the example count under ``num-examples``, Flower's key)."""

from __future__ import annotations

from typing import Any

from polytask.federated.arrays import Arrays
from polytask.federated.flower.environment import flower
from polytask.federated.protocol import ClientReply

ARRAYS, METRICS, CONFIG = "arrays", "metrics", "config"
EXAMPLES = "num-examples"


def to_record(arrays: Arrays) -> Any:
    """``arrays`` as an ``ArrayRecord``."""
    app = flower()
    return app.ArrayRecord({name: app.Array(value) for name, value in arrays.items()})


def from_record(record: Any) -> Arrays:
    """An ``ArrayRecord`` as named numpy arrays."""
    return {name: array.numpy() for name, array in record.items()}


def reply_content(reply: ClientReply) -> Any:
    """The ``RecordDict`` a client sends: its shared arrays and its metrics."""
    app = flower()
    metrics = app.MetricRecord({**reply.metrics, EXAMPLES: int(reply.num_examples)})
    return app.RecordDict({ARRAYS: to_record(reply.arrays), METRICS: metrics})


def client_reply(content: Any) -> ClientReply:
    """A :class:`ClientReply` from a reply's ``RecordDict`` (no private state: it never
    leaves the client)."""
    metrics = dict(content[METRICS])
    examples = int(metrics.pop(EXAMPLES))
    return ClientReply(
        from_record(content[ARRAYS]), examples, {k: float(v) for k, v in metrics.items()}
    )
