"""Flower app components for ``flwr run``: ``server_app`` and ``client_app`` read a
``polytask federate`` configuration named by the run config key ``polytask-config`` (a
YAML path, relative to the working directory of the process that runs the app) and run it
on whatever Flower gives them, a deployment of SuperNodes or Flower's local simulation.

An app folder needs only a ``pyproject.toml`` that names these components and the
configuration (``examples/flower_app`` is one, and ``docs/federated.md`` explains it)::

    [tool.flwr.app.components]
    serverapp = "polytask.federated.flower.app:server_app"
    clientapp = "polytask.federated.flower.app:client_app"

    [tool.flwr.app.config]
    polytask-config = "school.yaml"

Every process loads the configured data set and takes its own partition (a SuperNode's
``partition-id``): right for a simulation and for a demonstration; a real deployment gives
each SuperNode its own rows instead (:func:`make_client_app` with a
:data:`~polytask.federated.flower.client_app.ClientSource` that reads them). The server
writes the run folder (``checkpoints/``, ``results.json``, the report) and resumes from it
as ``polytask federate`` does; each client writes its own state under the same folder.
"""

from __future__ import annotations

import functools
from typing import Any

from polytask.federated.flower.environment import flower

CONFIG_KEY = "polytask-config"


@functools.lru_cache(maxsize=4)
def configured(path: str) -> tuple[Any, Any, Any, Any]:
    """``(config, data, algorithm, setup)`` of the configuration at ``path`` (loaded once
    per process)."""
    from polytask.federated.experiment import FederatedConfig
    from polytask.federated.run import prepare

    config = FederatedConfig.from_yaml(path)
    ready = prepare(config)
    return config, ready.data, ready.algorithm, ready.setup


def config_path(context: Any) -> str:
    """The configuration's path from the run config (an error naming the key if absent)."""
    if CONFIG_KEY not in context.run_config:
        raise KeyError(
            f'the Flower run config has no {CONFIG_KEY!r}: add {CONFIG_KEY} = "<your '
            'polytask federate YAML>" under [tool.flwr.app.config] in pyproject.toml'
        )
    return str(context.run_config[CONFIG_KEY])


def serve(grid: Any, context: Any) -> None:
    """The ``ServerApp``'s main: resume or start the configured run, run its rounds, and
    write the run folder with the clients' test scores (each scored by its own node)."""
    import time

    from polytask.federated.flower.server_app import FlowerServer
    from polytask.federated.rounds import FederatedRun
    from polytask.federated.run import (
        FederatedOutcome,
        checkpoint_writer,
        resume_point,
        write_results,
    )
    from polytask.training.run_folder import RunFolder

    config, data, algorithm, setup = configured(config_path(context))
    folder = config.output_dir()
    with RunFolder(folder):
        start = resume_point(config, len(data.train))
        writer = checkpoint_writer(folder / "checkpoints", config, None)
        server = FlowerServer(algorithm, setup, config.rounds, len(data.train),
                              config.participation, start=start, after_round=writer)  # fmt: skip
        started = time.perf_counter()
        server.run(grid)
        done_before = 0 if start is None else len(start.history)
        run = FederatedRun(server.global_arrays, [], server.history)
        outcome = FederatedOutcome({"test": server.scores[config.rounds]}, run, data.names,
                                   config.rounds - done_before,
                                   time.perf_counter() - started, folder)  # fmt: skip
        write_results(outcome, config)


def client(context: Any) -> Any:
    """This process's ``ClientApp`` for the configured run (built once): its rows are the
    configured data set's partition ``partition-id``, its held-out rows the test split."""
    return _client(config_path(context))


@functools.lru_cache(maxsize=4)
def _client(path: str) -> Any:
    from polytask.federated.flower.client_app import client_source, make_client_app

    config, data, algorithm, setup = configured(path)
    state = config.output_dir() / "checkpoints" / "clients"
    return make_client_app(algorithm, setup, client_source(data.train, data.test), state)


server_app = flower("flwr.serverapp").ServerApp()
server_app.main()(serve)

client_app = flower("flwr.clientapp").ClientApp()
for kind in ("train", "evaluate", "query"):
    getattr(client_app, kind)()(lambda message, context: client(context)(message, context))
