"""A run folder is one run (issue 15): settings fingerprint, lock, logs that continue exactly
from the checkpoint, no orphan temporary files, validated settings. Written before the fixes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from polytask.cli.main import main
from polytask.training import RunFolderInUseError, RunMismatchError, TrainerConfig, read_jsonl
from polytask.training.config import ConfigError
from polytask.training.experiment import ExperimentConfig

from .test_training import make_data, make_trainer

SMALL = ["dataset.options.num_samples=300", "schedule.epochs=1", "progress=false", "report=false"]


# ---------------------------------------------------------------- 1. settings fingerprint
def test_rerun_with_changed_setting_is_refused_and_config_kept(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "synthetic", f"output={out}", *SMALL]) == 0
    before = (out / "config.yaml").read_text()
    capsys.readouterr()
    code = main(["train", "synthetic", f"output={out}", *SMALL, "optimizer.lr=0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "optimizer.lr" in err and "0.001" in err and "0.1" in err
    assert "--restart" in err  # says what to do
    assert (out / "config.yaml").read_text() == before


def test_restart_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "synthetic", f"output={out}", *SMALL]) == 0
    assert (
        main(["train", "synthetic", f"output={out}", *SMALL, "optimizer.lr=0.01", "--restart"]) == 0
    )
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["optimizer"]["lr"] == 0.01
    starts = [r for r in read_jsonl(out / "metrics.jsonl") if r["kind"] == "start"]
    assert len(starts) == 1


def test_default_folders_of_different_settings_differ() -> None:
    base = {"dataset": {"name": "synthetic_correlation"}, "output": None}
    a = ExperimentConfig.from_dict({**base, "optimizer": {"lr": 0.001}})
    b = ExperimentConfig.from_dict({**base, "optimizer": {"lr": 0.1}})
    c = ExperimentConfig.from_dict({**base, "optimizer": {"lr": 0.001}, "progress": False})
    assert a.default_output() != b.default_output()
    assert a.default_output() == c.default_output()  # progress does not define the run


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        ({"batch_size": 32}, False),
        ({"level": "parameter"}, False),
        ({"grad_clip": 1.0}, False),
        ({"seed": 1}, False),
        ({"epochs": 5}, True),
        ({"max_steps": 100}, True),
        ({"patience": 3}, True),
        ({"log_every": 5}, True),
        ({"checkpoint_every": 3}, True),
        ({"progress": True}, True),
    ],
)
def test_trainer_resume_under_changed_settings(tmp_path: Path, change: dict, allowed: bool) -> None:
    train, val = make_data(), make_data(32, seed=1)
    make_trainer(tmp_path, epochs=2).fit(train, val)
    settings = {"epochs": 2, **change}
    trainer = make_trainer(tmp_path, **settings)
    if allowed:
        trainer.fit(train, val, resume=True)
    else:
        key = next(iter(change))
        with pytest.raises(RunMismatchError, match=key):
            trainer.fit(train, val, resume=True)


def test_trainer_resume_with_another_balancer_or_lr_is_refused(tmp_path: Path) -> None:
    train, val = make_data(), make_data(32, seed=1)
    make_trainer(tmp_path, epochs=2).fit(train, val)
    with pytest.raises(RunMismatchError, match="balancer"):
        make_trainer(tmp_path, balancer="mgda", epochs=2).fit(train, val, resume=True)
    trainer = make_trainer(tmp_path, epochs=2)
    trainer.optimizer.param_groups[0]["lr"] = 0.5
    with pytest.raises(RunMismatchError, match="lr"):
        trainer.fit(train, val, resume=True)


# ---------------------------------------------------------------- 2. one run per folder
HOLD = """
import fcntl, os, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.seek(0); handle.truncate(); handle.write(str(os.getpid())); handle.flush()
print("locked", flush=True)
time.sleep(60)
"""


def test_second_run_into_a_folder_is_refused_and_a_dead_lock_is_not(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUseError, match=str(holder.pid)):
            make_trainer(tmp_path, epochs=1).fit(make_data())
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    # The killed process's lock is gone with it.
    make_trainer(tmp_path, epochs=1).fit(make_data())


# ---------------------------------------------------------------- 3. logs continue exactly
def _records(path: Path) -> list[tuple]:
    return [
        (r["kind"], r.get("epoch"), r.get("step"))
        for r in read_jsonl(path)
        if r["kind"] in ("train", "epoch")
    ]


def test_log_continues_exactly_from_the_checkpoint(tmp_path: Path) -> None:
    train, val = make_data(), make_data(32, seed=1)
    make_trainer(tmp_path / "a").fit(train, val)

    def crash(trainer, step: int) -> None:
        if step == 6:
            raise RuntimeError("simulated crash")

    first = make_trainer(tmp_path / "b", checkpoint_every=4)
    first.callbacks = (crash,)
    with pytest.raises(RuntimeError):
        first.fit(train, val)
    make_trainer(tmp_path / "b", checkpoint_every=4).fit(train, val, resume=True)
    assert _records(tmp_path / "b" / "metrics.jsonl") == _records(tmp_path / "a" / "metrics.jsonl")


def test_finished_run_rerun_logs_its_test_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    for _ in range(2):
        assert main(["train", "synthetic", f"output={out}", *SMALL]) == 0
    tests = [r for r in read_jsonl(out / "metrics.jsonl") if r["kind"] == "test"]
    assert len(tests) == 1


# ---------------------------------------------------------------- 4. orphan temporary files
def test_orphan_checkpoint_temporaries_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir(parents=True)
    orphans = [folder / ".last.pt.abc123.tmp", folder / ".last.pt.xyz.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 1024)
    make_trainer(tmp_path, epochs=1).fit(make_data())
    assert not any(o.exists() for o in orphans)
    assert (folder / "last.pt").is_file()


# ---------------------------------------------------------------- 5. validated settings
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("grad_clip", -1.0),
        ("grad_clip", 0.0),
        ("patience", -1),
        ("patience", 0),
        ("checkpoint_every", -1),
        ("max_steps", 0),
        ("batch_size", 0),
        ("eval_batch_size", 0),
    ],
)
def test_invalid_trainer_settings_name_the_key(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TrainerConfig(**{field: value})


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.weight_decay=-1", "optimizer.weight_decay"),
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("schedule.batch_size=0", "schedule.batch_size"),
        ("schedule.grad_clip=-1", "schedule.grad_clip"),
        ("schedule.patience=-1", "schedule.patience"),
        ("schedule.max_steps=0", "schedule.max_steps"),
        ("checkpoint_every=-1", "checkpoint_every"),
    ],
)
def test_invalid_experiment_settings_name_the_key(override: str, key: str) -> None:
    base = {"dataset": {"name": "synthetic_correlation"}}
    from polytask.training.config import merge, parse_overrides

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ExperimentConfig.from_dict(merge(base, parse_overrides([override])))


def test_numbers_as_a_user_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {name: synthetic_correlation}\noptimizer: {lr: 1e-4}\n")
    assert ExperimentConfig.from_yaml(path).optimizer.lr == pytest.approx(1e-4)
    config = ExperimentConfig.from_yaml(path, ["optimizer.lr=3e-3", "schedule.grad_clip=5"])
    assert config.optimizer.lr == pytest.approx(3e-3)
    assert config.schedule.grad_clip == 5.0
    with pytest.raises(ConfigError, match=r"optimizer\.lr"):
        ExperimentConfig.from_yaml(path, ["optimizer.lr=fast"])


def test_results_json_of_a_refused_rerun_is_untouched(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "synthetic", f"output={out}", *SMALL]) == 0
    stamp = (out / "results.json").stat().st_mtime_ns
    time.sleep(0.01)
    assert main(["train", "synthetic", f"output={out}", *SMALL, "schedule.batch_size=64"]) == 2
    assert (out / "results.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "results.json").read_text())["steps"] > 0


# ---------------------------------------------------------------- SIGTERM like Ctrl-C
def test_sigterm_writes_a_checkpoint_and_exits_without_traceback(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "polytask.cli.main", "train", "synthetic", f"output={out}",
        "dataset.options.num_samples=2000", "schedule.epochs=500", "progress=false",
        "report=false", "log_every=1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        log = out / "metrics.jsonl"
        while time.monotonic() < deadline:
            if log.exists() and '"kind": "train"' in log.read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail("training never logged a step")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "SIGTERM" in err and "resume" in err
    assert (out / "checkpoints" / "last.pt").is_file()
    # The same command resumes (a shorter schedule is allowed on resume).
    again = [*command[:-4], "schedule.epochs=1", "progress=false", "report=false"]
    assert subprocess.run(again, env=env, timeout=120).returncode == 0


# ---------------------------------------------------------------- 6. learnt balancers
def _own_loop(balancer, optimizer, model, steps: int = 12) -> None:
    import torch

    from polytask import Task, TaskSet
    from polytask.gradients import backward

    tasks = TaskSet([Task("a", "mse"), Task("b", "mse")])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = {"a": torch.randn(32, generator=g), "b": 10 * torch.randn(32, generator=g)}
    for _ in range(steps):
        out = model(x)
        optimizer.zero_grad()
        backward(tasks.losses(out, y), balancer, features=out.features)
        optimizer.step()


class _Skipping:
    """An optimizer whose first ``skip`` steps do nothing (as a gradient scaler's may)."""

    def __init__(self, optimizer, skip: int) -> None:
        self.optimizer, self.skip = optimizer, skip

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        if self.skip:
            self.skip -= 1
            return
        self.optimizer.step()


@pytest.mark.parametrize("name", ["uncertainty", "imtl_l"])
def test_learnt_balancer_in_your_own_loop(name: str) -> None:
    import torch

    import polytask

    torch.manual_seed(0)
    tasks = polytask.TaskSet([polytask.Task("a", "mse"), polytask.Task("b", "mse")])
    model = polytask.models.create("shared_bottom", heads={"a": 1, "b": 1}, input_dim=4)
    balancer = polytask.balancers.create(name, tasks=tasks)  # no num_tasks needed
    (before,) = [p.detach().clone() for p in balancer.parameters()]
    optimizer = torch.optim.Adam([*model.parameters(), *balancer.parameters()], lr=1e-2)
    _own_loop(balancer, optimizer, model)
    (after,) = list(balancer.parameters())
    assert not torch.equal(before, after.detach())  # the weights are learnt

    # The README's old path (parameters left out of the optimizer) fails loudly.
    model = polytask.models.create("shared_bottom", heads={"a": 1, "b": 1}, input_dim=4)
    forgotten = polytask.balancers.create(name)
    with pytest.raises(ValueError, match="in no optimizer"):
        _own_loop(forgotten, torch.optim.Adam(model.parameters(), lr=1e-2), model)

    # Steps skipped at the start (a gradient scaler's) are no false alarm.
    model = polytask.models.create("shared_bottom", heads={"a": 1, "b": 1}, input_dim=4)
    late = polytask.balancers.create(name, tasks=tasks)
    optimizer = torch.optim.Adam([*model.parameters(), *late.parameters()], lr=1e-2)
    _own_loop(late, _Skipping(optimizer, skip=5), model)


def test_every_file_log_continues_exactly_from_the_checkpoint(tmp_path: Path) -> None:
    """The CSV log too (not only metrics.jsonl): no rows repeated after a resume."""
    import csv

    train, val = make_data(), make_data(32, seed=1)
    make_trainer(tmp_path / "a", csv=True).fit(train, val)

    def crash(trainer, step: int) -> None:
        if step == 6:
            raise RuntimeError("simulated crash")

    first = make_trainer(tmp_path / "b", checkpoint_every=4, csv=True)
    first.callbacks = (crash,)
    with pytest.raises(RuntimeError):
        first.fit(train, val)
    make_trainer(tmp_path / "b", checkpoint_every=4, csv=True).fit(train, val, resume=True)

    def rows(folder: Path) -> list[tuple]:
        with (folder / "metrics.csv").open() as handle:
            return [
                (r["kind"], r["step"], r["name"])
                for r in csv.DictReader(handle)
                if r["kind"] in ("train", "epoch")
            ]

    assert rows(tmp_path / "b") == rows(tmp_path / "a")


def test_restart_removes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "synthetic", f"output={out}", *SMALL, "csv=true"]) == 0
    assert (out / "metrics.csv").is_file() and (out / "model.yaml").is_file()
    from polytask.training.run_folder import clear_run

    clear_run(out)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_a_resumed_experiment_reads_its_checkpoint_once(tmp_path: Path, monkeypatch) -> None:
    import polytask.training.checkpoint as ckpt

    out = tmp_path / "run"
    assert main(["train", "synthetic", f"output={out}", *SMALL]) == 0
    calls = []
    original = ckpt.load
    monkeypatch.setattr(ckpt, "load", lambda *a, **k: calls.append(a) or original(*a, **k))
    assert main(["train", "synthetic", f"output={out}", *SMALL, "schedule.epochs=2"]) == 0
    assert len(calls) == 1  # the settings check and the resume share one read
