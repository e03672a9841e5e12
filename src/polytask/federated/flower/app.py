"""Flower app components for ``flwr run``: a ``ServerApp`` and a ``ClientApp`` that run a
``polytask federate`` configuration (a YAML file) on whatever Flower gives them, a
deployment of SuperNodes or Flower's local simulation.

A Flower app folder is a ``pyproject.toml``, the YAML, and a module of two lines that makes
the components (``examples/flower_app`` is one; ``docs/federated.md`` explains it)::

    # school_app.py, beside school.yaml
    from pathlib import Path
    from polytask.federated.flower.app import components

    apps = components(Path(__file__).with_name("school.yaml"))
    server_app = apps.server
    client_app = apps.client

with ``serverapp = "school_app:server_app"`` and ``clientapp = "school_app:client_app"``
under ``[tool.flwr.app.components]`` (one name per line: Flower checks the module's text
for each name before it runs it). The path is the module's own: Flower installs the app
folder (the FAB) in a directory of its choosing and runs the apps from another working
directory, so a path relative to the working directory would name nothing.

A run may pick another YAML of the app folder with the run config key
``polytask-config`` (``flwr run . --run-config 'polytask-config="other.yaml"'``); a
relative path there is taken relative to the default configuration's folder.

Every process loads the configured data set and takes its own partition (a SuperNode's
``partition-id``): right for a simulation and for a demonstration; a real deployment gives
each SuperNode its own rows instead (:func:`make_client_app` with a
:data:`~polytask.federated.flower.client_app.ClientSource` that reads them). The server
writes the run folder (``checkpoints/``, ``results.json``, the report; a relative
``output`` is taken from the server process's working directory) and resumes from it as
``polytask federate`` does; each client writes its own state under the same folder on its
own machine.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

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


def config_path(context: Any, default: Path | None) -> str:
    """The configuration this run uses: the run config's ``polytask-config`` (relative to
    ``default``'s folder) if it is set, else ``default``; an error naming the key if
    neither is there, and one naming the path if the file does not exist."""
    chosen = context.run_config.get(CONFIG_KEY)
    if chosen is None and default is None:
        raise KeyError(
            f'the Flower run config has no {CONFIG_KEY!r}: add {CONFIG_KEY} = "<your '
            'polytask federate YAML>" under [tool.flwr.app.config] in pyproject.toml, or '
            "make the components with components(Path(__file__).with_name('<YAML>'))"
        )
    if chosen is None:
        assert default is not None
        path = Path(default)
    else:
        path = Path(str(chosen))
        if not path.is_absolute() and default is not None:
            path = Path(default).parent / path
    if not path.is_file():
        raise FileNotFoundError(
            f"the polytask configuration {str(path)!r} does not exist (working directory "
            f"{Path.cwd()}); name it relative to the app's module: "
            "components(Path(__file__).with_name('<YAML>'))"
        )
    return str(path)


def serve(grid: Any, context: Any, default: Path | None = None) -> None:
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

    config, data, algorithm, setup = configured(config_path(context, default))
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


def client(context: Any, default: Path | None = None) -> Any:
    """This process's ``ClientApp`` for the configured run (built once): its rows are the
    configured data set's partition ``partition-id``, its held-out rows the test split."""
    return _client(config_path(context, default))


@functools.lru_cache(maxsize=4)
def _client(path: str) -> Any:
    from polytask.federated.flower.client_app import client_source, make_client_app

    config, data, algorithm, setup = configured(path)
    state = config.output_dir() / "checkpoints" / "clients"
    return make_client_app(algorithm, setup, client_source(data.train, data.test), state)


class FlowerApps(NamedTuple):
    """A Flower app's two components."""

    server: Any
    client: Any


def components(default: Path | str | None = None) -> FlowerApps:
    """Flower's ``ServerApp`` and ``ClientApp`` running the ``polytask federate``
    configuration at ``default`` (or the run config's ``polytask-config``, see
    :func:`config_path`)."""
    path = None if default is None else Path(default)
    server = flower("flwr.serverapp").ServerApp()
    server.main()(lambda grid, context: serve(grid, context, path))
    client_app = flower("flwr.clientapp").ClientApp()
    for kind in ("train", "evaluate", "query"):
        getattr(client_app, kind)()(
            lambda message, context: client(context, path)(message, context)
        )
    return FlowerApps(server, client_app)


# Components reading the configuration's path from the run config alone (absolute, or
# relative to the working directory): for apps whose YAML lives outside the app folder.
_generic = components()
server_app = _generic.server
client_app = _generic.client
