"""``polytask train CONFIG --nproc N``: the same command on ``N`` processes under
``torchrun`` (one machine, the loopback interface), each training on its slice of every
global batch (:func:`polytask.distributed.training.data_parallel`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

WORKER = "POLYTASK_RANK_WORKER"


def in_worker() -> bool:
    """Whether this process is one of the ranks ``--nproc`` started."""
    return os.environ.get(WORKER) == "1" and "WORLD_SIZE" in os.environ


def spawn(
    arguments: Sequence[str], nproc: int, clear: Path | None = None, quiet: bool = False
) -> int:
    """Run ``polytask ARGUMENTS`` on ``nproc`` processes with ``torchrun --standalone``
    (one thread each; ``clear``: a run folder to empty first, under its lock, before any
    rank starts). The ranks' output is shown without torchrun's own log lines, a message
    several ranks print alike once. A rank that fails stops the others (torchrun's doing)
    and the command ends with exit status 1 and a line naming the rank that failed first.
    ``quiet``: leave out what the ranks print on standard output (errors still show)."""
    if clear is not None:
        from polytask.training.run_folder import RunFolder, clear_run

        with RunFolder(clear):
            clear_run(clear)
    with tempfile.TemporaryDirectory(prefix="polytask-ranks-") as logs:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.5",
            "--tee=3", f"--log-dir={logs}", "-m", "polytask.cli.main", *arguments,
        ]  # fmt: skip
        env = {**os.environ, WORKER: "1",
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # fmt: skip
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
        launcher: list[str] = []
        shown: set[str] = set()
        streams = ((child.stdout, None if quiet else sys.stdout), (child.stderr, sys.stderr))
        readers = [
            threading.Thread(target=relay, args=(stream, out, launcher, shown), daemon=True)
            for stream, out in streams
        ]
        for reader in readers:
            reader.start()
        status = child.wait()
        for reader in readers:
            reader.join()
    if status != 0:
        print(f"polytask: error: {failure(launcher, nproc)}", file=sys.stderr)
        return 1
    return 0


RANK_LINE = re.compile(r"^\[default(\d+)\]:(.*)$", re.S)


def relay(stream: Any, out: TextIO | None, launcher: list[str], shown: set[str]) -> None:
    """Copy the ranks' lines of ``stream`` to ``out`` without torchrun's ``[defaultK]:``
    prefix (a ``polytask:`` line that another rank printed already is left out); keep
    torchrun's own lines in ``launcher``."""
    for line in stream:
        match = RANK_LINE.match(line)
        if match is None:
            launcher.append(line)
            continue
        text = match.group(2)
        if out is None:
            continue
        if text.startswith("polytask:"):
            if text in shown:
                continue
            shown.add(text)
        out.write(text)
        out.flush()


def failure(launcher: Sequence[str], nproc: int) -> str:
    """What ended a run, from torchrun's report: the first failing rank and how it ended."""
    report = "".join(launcher)
    root = report.split("Root Cause", 1)[-1]
    rank = re.search(r"rank\s*:\s*(\d+)", root)
    code = re.search(r"exitcode\s*:\s*(-?\d+)", root)
    if rank is None or code is None:
        return f"the run on {nproc} processes stopped; torchrun said:\n{report.strip()}"
    status = int(code.group(1))
    how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
    return (f"rank {rank.group(1)} {how}, and the run on {nproc} processes stopped (its own "
            "message, if it printed one, is above)")  # fmt: skip


def start_rank() -> bool:
    """In a ``--nproc`` rank: start the process group (:func:`polytask.distributed.init`)
    and say whether this rank is the one that prints; ``True`` outside ``--nproc``."""
    if not in_worker():
        return True
    import polytask.distributed as ptd

    ptd.init()
    return ptd.is_main()


def finish_rank(finished: bool) -> None:
    """In a ``--nproc`` rank: take the process group down before the interpreter exits,
    after every rank got here when the run ``finished`` (a gloo group left to the exit's
    destructors, or taken down while a peer still works, can end a rank with ``terminate
    called without an active exception``: a failed rank after a finished run)."""
    import torch.distributed as dist

    if in_worker() and dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


LOST_PEER = ("Connection reset", "Connection closed", "Broken pipe", "timed out", "Timeout")


def lost_peer(error: BaseException) -> str | None:
    """In a ``--nproc`` rank, the line to show when ``error`` is the loss of another rank (a
    collective that failed because a peer died or timed out: torch's ``DistError``, or
    gloo's ``RuntimeError`` naming a closed connection), else ``None``. The launcher then
    names the rank that failed first; this rank's traceback would only repeat it."""
    import torch.distributed as dist

    text = str(error)
    if not in_worker() or not (
        isinstance(error, dist.DistError)
        or (isinstance(error, RuntimeError) and any(k in text for k in LOST_PEER))
    ):
        return None
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"rank {os.environ.get('RANK', '?')} lost contact with another rank ({first})"


class RunFailedError(ValueError):
    """A run of ``polytask compare --nproc`` that failed on its processes."""


def nproc_runner(nproc: int) -> Any:
    """A :data:`~polytask.studies.seeds.Runner` that trains each configuration with
    ``polytask train --nproc nproc``: the configuration is written to a temporary YAML (its
    run folder made concrete, a relative table path made absolute) and its test metrics read
    back from the run folder's ``results.json``."""
    import dataclasses
    import json

    import yaml

    from polytask.studies.seeds import SeedRun
    from polytask.training.config import to_dict
    from polytask.training.experiment import ExperimentConfig

    def run(config: ExperimentConfig) -> SeedRun:
        folder = config.output_dir()
        if folder is None:
            raise ValueError("--nproc needs run folders: leave output set")
        data = to_dict(dataclasses.replace(config, output=str(folder)))
        options = data["dataset"]["options"]
        if isinstance(options.get("source"), str):
            options["source"] = str(Path(options["source"]).resolve())
        with tempfile.TemporaryDirectory(prefix="polytask-run-") as scratch:
            path = Path(scratch) / "run.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            if spawn(["train", str(path)], nproc, quiet=True) != 0:
                raise RunFailedError(f"the run in {folder} failed on {nproc} processes")
        saved = json.loads((folder / "results.json").read_text())
        return SeedRun(config.seed, saved["test"], saved["seconds"], saved["steps"], str(folder))

    return run
