"""This Flower app's components: polytask's ServerApp and ClientApp running school.yaml
(named relative to this file, since Flower runs the app from a directory of its own)."""

from pathlib import Path

from polytask.federated.flower.app import components

apps = components(Path(__file__).with_name("school.yaml"))
server_app = apps.server
client_app = apps.client
