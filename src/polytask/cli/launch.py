"""``polytask train CONFIG --nproc N``: the same command on ``N`` processes under
``torchrun`` (one machine, the loopback interface), each training on its slice of every
global batch (:func:`polytask.distributed.training.data_parallel`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

WORKER = "POLYTASK_RANK_WORKER"


def in_worker() -> bool:
    """Whether this process is one of the ranks ``--nproc`` started."""
    return os.environ.get(WORKER) == "1" and "WORLD_SIZE" in os.environ


def spawn(arguments: Sequence[str], nproc: int, clear: Path | None = None) -> int:
    """Run ``polytask ARGUMENTS`` on ``nproc`` processes with ``torchrun --standalone``
    (each with one thread; ``clear``: a run folder to empty first, under its lock, before
    any rank starts). A rank that fails stops the others (torchrun's doing) and the
    command ends with exit status 1 and a line saying so; the failing rank's own message is
    printed above it."""
    if clear is not None:
        from polytask.training.run_folder import RunFolder, clear_run

        with RunFolder(clear):
            clear_run(clear)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.5",
               "-m", "polytask.cli.main", *arguments]  # fmt: skip
    env = {**os.environ, WORKER: "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    status = subprocess.run(command, env=env, check=False).returncode
    if status != 0:
        print(
            f"polytask: error: the run on {nproc} processes stopped (torchrun exit status "
            f"{status}); the failing rank's message is above",
            file=sys.stderr,
        )
        return 1
    return 0


def start_rank() -> bool:
    """In a ``--nproc`` rank: start the process group (:func:`polytask.distributed.init`)
    and say whether this rank is the one that prints; ``True`` outside ``--nproc``."""
    if not in_worker():
        return True
    import polytask.distributed as ptd

    ptd.init()
    return ptd.is_main()
