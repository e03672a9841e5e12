"""polytask train CONFIG --nproc 2 (issue 17): torchrun starts two ranks; each trains on
its half of every global batch, so the run follows the one-process run; rank 0 alone
writes the run folder; a run stopped and resumed on two processes is bit-identical to an
uninterrupted one; a failing rank stops the other with a message, within a timeout; and a
model with BatchNorm is refused (SyncBatchNorm named). The example table of
examples/table is the data (it ships with the project)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from polytask.cli.main import main

CONFIG = str(Path(__file__).parents[1] / "examples" / "table" / "houses.yaml")
COMMON = ["progress=false", "report=false", "schedule.batch_size=64"]


def nproc(tmp_path: Path, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``polytask train CONFIG ARGUMENTS --nproc 2`` in a child process (killed by its id
    after ``timeout`` seconds, with torchrun and its ranks: they share its process group)."""
    command = [sys.executable, "-m", "polytask.cli.main", "train", CONFIG, *COMMON, *arguments,
               "--nproc", "2"]  # fmt: skip
    child = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        out, err = child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, 9)
            child.wait(timeout=10)
    return subprocess.CompletedProcess(command, child.returncode, out, err)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    return state["model"]


def test_two_processes_follow_the_one_process_run(tmp_path: Path) -> None:
    cases = (("mgda", "representation"), ("upgrad", "parameter"), ("dwa", "representation"))
    for balancer, level in cases:
        settings = [f"balancer.name={balancer}", f"gradients.level={level}",
                    "schedule.max_steps=12"]  # fmt: skip
        assert main(["train", CONFIG, *COMMON, *settings, f"output={tmp_path}/one-{balancer}"]) == 0
        done = nproc(tmp_path, *settings, f"output={tmp_path}/two-{balancer}")
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("best epoch") == 1  # rank 0 alone prints
        one, two = weights(tmp_path / f"one-{balancer}"), weights(tmp_path / f"two-{balancer}")
        for name in one:
            gap = float((one[name] - two[name]).abs().max())
            assert gap < 1e-4, f"{balancer} ({level}): {name} {gap:.1e} from one process"
        log = (tmp_path / f"two-{balancer}" / "metrics.jsonl").read_text()
        assert log.count('"kind": "start"') == 1


def test_a_resumed_two_process_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    settings = ["balancer.name=mgda"]
    whole = nproc(tmp_path, *settings, "schedule.max_steps=12", f"output={tmp_path}/whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    first = nproc(tmp_path, *settings, "schedule.max_steps=5", f"output={tmp_path}/parts")
    assert first.returncode == 0, first.stderr[-3000:]
    second = nproc(tmp_path, *settings, "schedule.max_steps=12", f"output={tmp_path}/parts")
    assert second.returncode == 0, second.stderr[-3000:]
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "parts")
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_a_failing_rank_stops_the_run_with_a_message(tmp_path: Path) -> None:
    """A mistake every rank finds (a balancer name with a typo): the command ends within
    the timeout with the ranks' message once and a line naming the rank, without
    torchrun's traceback."""
    done = nproc(tmp_path, "balancer.name=mgdaa", "schedule.max_steps=4",
                 f"output={tmp_path}/bad", timeout=180)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("unknown balancer 'mgdaa'. Did you mean 'mgda'") == 1
    assert "exited with status 2, and the run on 2 processes stopped" in done.stderr
    assert "Traceback" not in done.stderr


def rank_process(marker: str, rank: int) -> int | None:
    """The process id of rank ``rank`` of the run whose command line names ``marker``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
            environment = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (marker.encode() in command and b"torch.distributed.run" not in command
                and f"RANK={rank}".encode() in environment):  # fmt: skip
            return int(entry)
    return None


def test_a_killed_rank_ends_the_run_with_its_number(tmp_path: Path) -> None:
    """Rank 1 killed mid-run: the command ends (well within the timeout) naming rank 1 and
    the signal, not a hang and not torchrun's traceback."""
    import signal
    import time

    marker = f"{tmp_path}/killed"
    command = [sys.executable, "-m", "polytask.cli.main", "train", CONFIG, *COMMON,
               "schedule.max_steps=100000", "schedule.epochs=1000", f"output={marker}",
               "--nproc", "2"]  # fmt: skip
    child = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (pid := rank_process(marker, 1)) is None or not (
            Path(marker) / "metrics.jsonl"
        ).exists():
            assert time.monotonic() < deadline and child.poll() is None, "the ranks never started"
            time.sleep(0.2)
        time.sleep(1.0)  # training under way
        os.kill(pid, signal.SIGKILL)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, 9)
            child.wait(timeout=10)
    assert child.returncode == 1
    assert "rank 1 was killed by signal 9" in err, err[-2000:]
    assert "Traceback" not in err, err[-4000:]


def test_batch_norm_is_refused_on_several_ranks() -> None:
    from polytask.distributed.training import BatchNormError, check_batch_norm

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(BatchNormError, match="convert_sync_batchnorm"):
        check_batch_norm(model)
    check_batch_norm(torch.nn.SyncBatchNorm.convert_sync_batchnorm(model))


def test_compare_with_nproc_equals_compare_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """polytask compare --nproc 2 trains each run on two processes: the comparison's test
    metrics equal those of the one-process comparison (float32 sums in another order)."""
    import json

    monkeypatch.chdir(tmp_path)
    common = [CONFIG, *COMMON, "schedule.max_steps=12", "--balancers", "mgda", "--seeds", "1",
              "--no-baselines"]  # fmt: skip
    assert main(["compare", *common, "--output", "one"]) == 0
    assert main(["compare", *common, "--output", "two", "--nproc", "2"]) == 0
    one, two = (json.loads((tmp_path / f / "comparison.json").read_text()) for f in ("one", "two"))
    first, second = (c["methods"][0]["metrics"] for c in (one, two))
    assert first.keys() == second.keys() and len(first) >= 5
    for name, summary in first.items():
        assert second[name]["mean"] == pytest.approx(summary["mean"], rel=1e-4), name
    assert main(["compare", *common, "--output", "x", "--nproc", "2", "--workers", "2"]) == 2
    assert "give --workers 1 with --nproc" in capsys.readouterr().err
