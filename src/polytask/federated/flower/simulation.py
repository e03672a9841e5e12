"""A federated run on Flower's simulation engine (Ray underneath, ``polytask[federated]``):
each client is a virtual SuperNode whose ``ClientApp`` runs in a Ray actor, the
``ServerApp`` in this process; every process stays on this machine."""

from __future__ import annotations

import os
from typing import Any

from polytask.federated.flower.environment import flower


def run_simulation(
    server_app: Any, client_app: Any, num_clients: int, cpus_per_client: float = 1.0
) -> None:
    """Run ``server_app`` with ``num_clients`` virtual nodes of ``client_app`` (each given
    ``cpus_per_client`` CPUs, no GPU; Ray started on this machine only, without its
    dashboard). A ServerApp that fails is an error here, not a log line."""
    flower("ray")  # the engine needs Ray: a missing one is one line naming the extra
    simulation = flower("flwr.simulation")
    backend = {
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
        "init_args": {"num_cpus": os.cpu_count() or 1, "include_dashboard": False,
                      "logging_level": "error", "log_to_driver": False},
    }  # fmt: skip
    failures: list[BaseException] = []

    def guarded(grid: Any, context: Any) -> None:
        try:
            server_app(grid, context)
        except BaseException as error:  # carried out of Flower's thread, raised below
            failures.append(error)
            raise

    guarded_app = flower("flwr.serverapp").ServerApp()
    guarded_app.main()(guarded)
    simulation.run_simulation(
        server_app=guarded_app, client_app=client_app, num_supernodes=num_clients,
        backend_config=backend,
    )  # fmt: skip
    if failures:
        raise failures[0]
