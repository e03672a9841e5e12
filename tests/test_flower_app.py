"""A Flower app from a `polytask federate` YAML (examples/flower_app): its components run
the configuration on Flower's apps in this process with the test scores of
`polytask federate`; the configuration is found beside the app's module whatever the
working directory; and (slow) `flwr run` itself, with a local SuperLink and Ray, computes
the core's run bit for bit."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr", reason="the Flower app needs polytask[federated]")

from flwr.app import Context, RecordDict

from polytask.federated.experiment import FederatedConfig
from polytask.federated.flower import app as flower_app
from polytask.federated.flower import run_in_process
from polytask.federated.run import run_federated

from .test_federated_command import write_config

EXAMPLE = Path(__file__).parents[1] / "examples" / "flower_app"


def context(run_config: dict) -> Context:
    return Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config=run_config)


def core_scores(path: Path, output: Path) -> dict:
    reference = FederatedConfig.from_yaml(path, [f"output={output}"])
    run_federated(reference, say=lambda _: None)
    return json.loads((output / "results.json").read_text())


def load_module(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"app_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_components_run_a_configuration_named_in_the_run_config(tmp_path: Path) -> None:
    """The generic components read `polytask-config`: each node's test scores equal those
    of polytask federate on the same configuration."""
    path = write_config(tmp_path, f"rounds: 2\nalgorithm: {{name: fedper}}\noutput: {tmp_path}/app")
    expected = core_scores(path, tmp_path / "reference")
    flower_app.configured.cache_clear()
    flower_app._client.cache_clear()
    run_in_process(flower_app.server_app, flower_app.client_app, 6,
                   run_config={"polytask-config": str(path)})  # fmt: skip
    saved = json.loads((tmp_path / "app" / "results.json").read_text())
    assert saved["per_client"]["test"] == expected["per_client"]["test"]
    assert (tmp_path / "app" / "report.html").exists()


def test_an_app_module_finds_its_yaml_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's module names its YAML relative to itself (Flower runs an installed app
    from a directory of its own); a run config may pick another YAML of the app folder."""
    app_dir = tmp_path / "installed_app"
    shutil.copytree(EXAMPLE, app_dir)
    module = load_module(app_dir / "school_app.py")
    monkeypatch.chdir(tmp_path)
    assert flower_app.config_path(context({}), app_dir / "school.yaml") == str(
        app_dir / "school.yaml"
    )
    (app_dir / "other.yaml").write_text((app_dir / "school.yaml").read_text())
    other = context({"polytask-config": "other.yaml"})
    chosen = flower_app.config_path(other, app_dir / "school.yaml")
    assert chosen == str(app_dir / "other.yaml")
    config = FederatedConfig.from_yaml(chosen)
    assert config.dataset.name == "school" and config.local.epochs == 1
    assert module.server_app is not None and module.client_app is not None


def test_a_missing_configuration_is_named() -> None:
    with pytest.raises(KeyError, match="polytask-config"):
        flower_app.config_path(context({}), None)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.yaml.*with_name"):
        flower_app.config_path(context({"polytask-config": "nowhere.yaml"}), None)


def test_too_few_nodes_name_how_many_the_run_needs() -> None:
    from polytask.federated.flower.server_app import discover_clients

    class TwoNodes:
        def get_node_ids(self) -> list[int]:
            return [11, 12]

    with pytest.raises(TimeoutError, match=r"2 of the 5 client nodes.*num-supernodes = 5"):
        discover_clients(TwoNodes(), 5, timeout=0.3)


def stop_processes_under(folder: Path) -> None:
    """Stop (by process id) every process whose command line names ``folder``: the local
    SuperLink `flwr run` started (its database lives under FLWR_HOME) and its children."""
    mine = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    for pid in mine:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in command and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


@pytest.mark.slow
def test_flwr_run_of_the_example_app_computes_the_core_run(tmp_path: Path) -> None:
    """`flwr run . local` on a copy of examples/flower_app (its pyproject and module as
    they are; its YAML a generated table of 6 shops): a local SuperLink, Flower's
    simulation engine and Ray run the rounds, and the run folder's per-client scores and
    history equal polytask federate's. The SuperLink is stopped by its process id."""
    pytest.importorskip("ray", reason="flwr run's simulation needs polytask[federated]")
    path = write_config(tmp_path, "rounds: 2\noutput: runs/flwr")
    app_dir = tmp_path / "app"
    shutil.copytree(EXAMPLE, app_dir)
    text = path.read_text().replace("source: shops.csv", f"source: {tmp_path / 'shops.csv'}")
    (app_dir / "school.yaml").write_text(text)
    home = tmp_path / "flwr_home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
        "options.num-supernodes = 6\n"
    )
    env = {**os.environ, "FLWR_HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    started = time.monotonic()
    try:
        done = subprocess.run([str(Path(sys.executable).parent / "flwr"), "run", ".", "local",
                               "--stream"], cwd=app_dir, env=env, capture_output=True,
                              text=True, timeout=240)  # fmt: skip
    finally:
        stop_processes_under(home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - started < 240
    results = app_dir / "runs" / "flwr" / "results.json"
    assert results.exists(), done.stdout[-3000:]
    expected = core_scores(app_dir / "school.yaml", tmp_path / "core")
    saved = json.loads(results.read_text())
    assert saved["per_client"]["test"] == expected["per_client"]["test"]
    assert saved["history"] == expected["history"]
