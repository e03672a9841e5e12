"""polytask's federated algorithms on Flower (extra ``polytask[federated]``).

:func:`make_client_app` and :class:`FlowerServer` build Flower's ``ClientApp`` and
``ServerApp`` from the engine-free core (:mod:`polytask.federated`); the
:class:`PolytaskStrategy` plans rounds exactly as :func:`~polytask.federated.run_rounds`
does, so a run on Flower equals the core's run bit for bit (tested). They run on Flower's
simulation engine (:func:`run_simulation`, Ray underneath), on a deployment (``flwr run``),
or in this process (:func:`run_in_process`, no Ray). Importing this package sets Flower's
environment first (:func:`flower_environment`: no telemetry, no runtime installs)."""

from __future__ import annotations

from polytask.federated.flower.client_app import ClientData, client_source, make_client_app
from polytask.federated.flower.environment import flower_environment
from polytask.federated.flower.in_process import InProcessGrid, run_in_process
from polytask.federated.flower.server_app import FlowerServer, discover_clients
from polytask.federated.flower.strategy import PolytaskStrategy

__all__ = [
    "ClientData",
    "FlowerServer",
    "InProcessGrid",
    "PolytaskStrategy",
    "client_source",
    "discover_clients",
    "flower_environment",
    "make_client_app",
    "run_in_process",
]
