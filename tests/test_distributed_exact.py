"""polytask.distributed (issue 17): on 2 gloo ranks, every loss weighting and every Gramian
method, at each level it supports, takes the step one process takes on the whole batch.
Registry-driven (every method the engine's reductions cover), three Adam steps
in float64 with labels missing (a task absent from one rank's shard, and one absent from the
whole batch), gradients averaged by polytask.distributed.average_gradients or by DDP: the
ranks end bit-identical and equal the one-process run to 1e-10. The processes are stopped by
their ids, with a timeout, and talk over the loopback interface only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polytask.balancers.registry import available
from polytask.gradients.distributed_guard import exact_with_reduction
from polytask.testing.check import factory

from .test_distributed_guard import free_port

WORKER = Path(__file__).with_name("distributed_step_worker.py")


def run_ranks(world: int, mode: str) -> list[dict]:
    """Run the worker on ``world`` ranks; each rank's {balancer: parameters}."""
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER)],
            env={
                **os.environ,
                "WORLD": str(world),
                "RANK": str(rank),
                "PORT": port,
                "MODE": mode,
                "OMP_NUM_THREADS": "1",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return outputs


def covered() -> list[str]:
    """``balancer@level`` for every method the reductions cover, at each of its levels."""
    out = []
    for name in available():
        balancer = factory(name)(3)
        if not exact_with_reduction(balancer):
            continue
        levels = ["losses"] if balancer.needs == "losses" else list(balancer.levels)
        if "parameter" in levels:
            levels.append("parameter-through-features")
        out += [f"{name}@{level}" for level in levels]
    return out


@pytest.mark.parametrize("mode", ["average", "ddp"])
def test_two_ranks_take_the_whole_batch_step_for_every_covered_method(mode: str) -> None:
    (one,) = run_ranks(1, mode)
    first, second = run_ranks(2, mode)
    names = covered()
    assert set(one) == set(first) == set(names)
    assert sum(n.endswith("@parameter") for n in names) >= 15 and len(names) >= 50
    for name in names:
        assert first[name] == second[name], f"{name}: the ranks differ"
        gap = float(np.abs(np.array(first[name]) - np.array(one[name])).max())
        assert gap < 1e-10, f"{name}: {gap:.2e} from the one-process run"
