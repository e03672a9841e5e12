"""``polytask federate CONFIG``: a user's table (generated here, so the test runs
everywhere) made into clients and trained from YAML; a run folder that resumes exactly
(also after a crash between a client's and the server's checkpoint, and on Flower's apps);
changed settings refused with the differences named; one-line errors for typos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polytask.cli.main import main
from polytask.federated.experiment import FederatedConfig
from polytask.federated.run import run_federated

from .conftest import DATA_ROOT, have_data
from .test_classic_command import write_shops


def write_config(folder: Path, extra: str = "", tasks: str = "{sales: {loss: mse}}",
                 task_column: str = "task_column: shop") -> Path:  # fmt: skip
    write_shops(folder)
    text = f"""
dataset:
  name: table
  options:
    source: shops.csv
    {task_column}
    inputs: [x1, x2, x3]
    tasks: {tasks}
    fractions: [0.6, 0.2, 0.2]
model: {{name: shared_bottom, options: {{trunk_dims: [8], head_dims: []}}}}
algorithm: {{name: ditto}}
local: {{steps: 4, batch_size: 8, lr: 0.05}}
participation: {{fraction: 0.7, stragglers: 0.4, straggler_mode: fewer_steps}}
rounds: 4
{extra}"""
    path = folder / "fed.yaml"
    path.write_text(text)
    return path


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_federate_trains_each_shop_as_a_client_and_writes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"output: {tmp_path}/run")
    assert main(["federate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "bottom decile" in out and "6 clients" in out
    saved = results(tmp_path / "run")
    assert saved["clients"] == [f"shop_{s}" for s in "abcdef"]
    # Sales are standardised by the pooled training rows: predicting their mean scores ~1.
    # A linear signal with unit noise against a spread of ~20 is learnt far below that.
    assert saved["summary"]["test"]["y"]["weighted_mean"] < 0.2
    assert len(saved["history"]) == 4
    for name in ("report.md", "report.html", "report-test-y.png"):
        assert (tmp_path / "run" / name).exists()
    assert "Worst clients" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize("engine", ["core", "flower"])
def test_going_on_from_a_saved_run_equals_running_straight_through(
    tmp_path: Path, engine: str
) -> None:
    """Two rounds, then two more in the same folder (resumed from the checkpoint: server
    arrays and every client's private state), equal four rounds at once, bit for bit."""
    pytest.importorskip("flwr") if engine == "flower" else None
    path = write_config(tmp_path)
    straight = FederatedConfig.from_yaml(path, [f"output={tmp_path}/straight"])
    run_federated(straight, say=lambda _: None)
    split = [f"output={tmp_path}/split", f"engine={engine}"]
    first = run_federated(FederatedConfig.from_yaml(path, [*split, "rounds=2"]), say=print)
    assert first.rounds_run == 2
    said: list[str] = []
    second = run_federated(FederatedConfig.from_yaml(path, split), say=said.append)
    assert second.rounds_run == 2 and any("resuming after round 2" in s for s in said)
    a, b = results(tmp_path / "straight"), results(tmp_path / "split")
    assert a["per_client"] == b["per_client"] and a["history"] == b["history"]


def test_a_crash_between_the_clients_and_the_servers_checkpoint_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 3's clients have written their states when the process dies before the
    server's checkpoint: the resumed run takes each client's state from round 2 (its
    previous file) and equals a run that never stopped."""
    import polytask.federated.run as runner

    path = write_config(tmp_path)
    run_federated(FederatedConfig.from_yaml(path, [f"output={tmp_path}/straight"]),
                  say=lambda _: None)  # fmt: skip
    real = runner.save_server

    def dies_in_round_3(folder, run, settings):  # type: ignore[no-untyped-def]
        if len(run.history) == 3:
            raise KeyboardInterrupt("killed")
        real(folder, run, settings)

    monkeypatch.setattr(runner, "save_server", dies_in_round_3)
    crashed = FederatedConfig.from_yaml(path, [f"output={tmp_path}/crashed"])
    with pytest.raises(KeyboardInterrupt):
        run_federated(crashed, say=lambda _: None)
    assert any((tmp_path / "crashed" / "checkpoints" / "clients").glob("*.prev.pt"))
    monkeypatch.setattr(runner, "save_server", real)
    resumed = run_federated(crashed, say=lambda _: None)
    assert resumed.rounds_run == 2
    a, b = results(tmp_path / "straight"), results(tmp_path / "crashed")
    assert a["per_client"] == b["per_client"] and a["history"] == b["history"]


def test_changed_settings_are_refused_with_the_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"output: {tmp_path}/run")
    assert main(["federate", str(path), "rounds=1"]) == 0
    assert main(["federate", str(path), "rounds=1", "local.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "local.lr: 0.05 -> 0.5" in err and "--restart" in err
    assert main(["federate", str(path), "rounds=1", "local.lr=0.5", "--restart"]) == 0
    assert results(tmp_path / "run")["config"]["local"]["lr"] == 0.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algorithm.name=fedavgg", "Did you mean 'fedavg'"),
        ("algorithm.options.lamda=1", "ditto has no option 'lamda'; its options are lam"),
        ("engine=flwr", "Did you mean 'flower'"),
        ("clients.split=dirichlet", "needs the task whose labels it skews"),
        ("rounds=0", "rounds"),
    ],
)
def test_a_typo_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, message: str
) -> None:
    path = write_config(tmp_path)
    assert main(["federate", str(path), override]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_dirichlet_split_keeps_every_task_on_every_client(tmp_path: Path) -> None:
    """One table, two tasks (sales, busy), shared out by the labels of busy: each client
    trains both tasks; validation and test rows follow the same shares."""
    path = write_config(
        tmp_path,
        "clients: {split: dirichlet, task: busy, count: 3, alpha: 1.0}\nalgorithm: {name: fedavg}",
        tasks="{sales: {loss: mse}, busy: {loss: bce}}",
        task_column="",
    )
    outcome = run_federated(FederatedConfig.from_yaml(path, [f"output={tmp_path}/run"]),
                            say=lambda _: None)  # fmt: skip
    assert outcome.names == ["client0", "client1", "client2"]
    assert set(outcome.scores["test"].losses[0]) == {"sales", "busy"}
    assert sum(outcome.scores["test"].examples) == 72  # every test row, once


def test_grouped_clients_are_the_data_sets_row_groups() -> None:
    """clients: {split: groups}: one client per group of metadata['groups'], with every
    task; a group missing from a split, or data without groups, is a one-line error."""
    import torch

    from polytask import Task
    from polytask.data.dataset import TensorTaskDataset
    from polytask.data.splits import DataSplits
    from polytask.federated.clients import grouped_clients
    from polytask.training.config import ConfigError

    def split(n: int) -> TensorTaskDataset:
        x = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
        return TensorTaskDataset(x, {"a": x[:, 0], "b": x[:, 1]})

    groups = {
        s: {"p1": torch.tensor([0, 2]), "p2": torch.tensor([1])} for s in ("train", "val", "test")
    }
    tasks = [Task("a", "mse"), Task("b", "mse")]
    data = DataSplits(split(3), split(3), split(3), tasks, (2,), {"groups": groups})
    names, (train, _, test) = grouped_clients(data, "toy")
    assert names == ["p1", "p2"]
    assert torch.equal(train[0].inputs, data.train.inputs[[0, 2]])
    assert set(test[1].targets) == {"a", "b"} and len(test[1]) == 1
    groups["test"] = {"p1": torch.tensor([0])}
    with pytest.raises(ConfigError, match=r"group\(s\) \['p2'\] have no test rows"):
        grouped_clients(data, "toy")
    with pytest.raises(ConfigError, match="needs data whose rows are grouped"):
        grouped_clients(DataSplits(split(3), split(3), split(3), tasks, (2,), {}), "toy")


@pytest.mark.skipif(not have_data("parkinsons_telemonitoring"), reason="needs the local copy")
def test_the_packaged_parkinsons_config_trains_two_task_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """42 patients, each a client with both UPDRS tasks balanced by MGDA inside it."""
    monkeypatch.setenv("POLYTASK_DATA", str(DATA_ROOT))  # the loader reads the local copy
    assert main(["federate", "parkinsons", "rounds=1", f"output={tmp_path}/run"]) == 0
    saved = results(tmp_path / "run")
    assert len(saved["clients"]) == 42
    assert set(saved["summary"]["test"]) == {"motor_UPDRS", "total_UPDRS"}
    assert saved["config"]["local"]["balancer"] == "mgda"
