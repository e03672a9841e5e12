"""A Flower ``Grid`` that hands each message to a ``ClientApp`` in this process: the same
``ServerApp`` and ``ClientApp`` code paths as Flower's engines, without Ray or a
SuperLink (for tests, for debugging an app, and for runs too small to need an engine).
Each node keeps its own ``Context`` (``node_config`` with ``partition-id``, ``state``)
from round to round, as Flower's simulation engine does."""

from __future__ import annotations

import contextlib
import logging
import traceback
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from polytask.federated.flower.environment import flower

_Grid: Any = flower("flwr.serverapp").Grid
_app = flower()


@contextlib.contextmanager
def task_identity(run_id: int) -> Iterator[None]:
    """Flower's process identity (run, node, task) as its simulation sets it for the
    server side, restored afterwards; messages cannot be made without it."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id = 1, run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    try:
        yield
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


class InProcessGrid(_Grid):
    """``num_clients`` nodes whose ``ClientApp`` runs when a message is pushed. Node ids
    are random 63-bit integers (seeded), unrelated to the partition ids, as in Flower."""

    def __init__(
        self,
        client_app: Any,
        num_clients: int,
        seed: int = 0,
        run_id: int = 1,
        run_config: dict[str, Any] | None = None,
    ):
        from flwr.supercore.run import Run

        ids = np.random.default_rng(seed).choice(2**62, size=num_clients, replace=False)
        self.client_app = client_app
        self.contexts = {
            int(node): _app.Context(
                run_id=run_id,
                node_id=int(node),
                node_config={"partition-id": k, "num-partitions": num_clients},
                state=_app.RecordDict(),
                run_config=dict(run_config or {}),
            )
            for k, node in enumerate(ids)
        }
        self._run = Run.create_empty(run_id=run_id)
        self._replies: dict[str, Any] = {}

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(
        self,
        content: Any,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Any:
        return _app.Message(
            content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id, ttl=ttl
        )

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
        """Run the ``ClientApp`` on each message now; an exception becomes an error reply
        (as on a SuperNode), with its traceback as the reason."""
        ids = []
        for message in messages:
            context = self.contexts[message.metadata.dst_node_id]
            try:
                reply = self.client_app(message, context)
            except Exception:
                reply = _app.Message(_app.Error(0, traceback.format_exc()), reply_to=message)
            key = uuid.uuid4().hex
            self._replies[key] = reply
            ids.append(key)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Any]:
        return [self._replies.pop(key) for key in message_ids]

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None) -> list:
        return list(self.pull_messages(self.push_messages(messages)))

    def private_states(self) -> list[Any]:
        """Each client's ``context.state``, by partition id."""
        return [
            c.state
            for c in sorted(self.contexts.values(), key=lambda c: c.node_config["partition-id"])
        ]


def run_in_process(
    server_app: Any,
    client_app: Any,
    num_clients: int,
    seed: int = 0,
    run_config: dict[str, Any] | None = None,
) -> InProcessGrid:
    """Run ``server_app`` against ``num_clients`` in-process nodes of ``client_app`` (every
    context gets ``run_config``, as ``[tool.flwr.app.config]`` gives it); returns the grid
    (its nodes' contexts hold the clients' private state)."""
    grid = InProcessGrid(client_app, num_clients, seed, run_config=run_config)
    context = _app.Context(run_id=1, node_id=0, node_config={}, state=_app.RecordDict(),
                           run_config=dict(run_config or {}))  # fmt: skip
    log = logging.getLogger("flwr")
    level = log.level
    log.setLevel(logging.WARNING)  # Flower's per-round INFO lines would drown polytask's
    try:
        with task_identity(grid.run.run_id):
            server_app(grid, context)
    finally:
        log.setLevel(level)
    return grid
