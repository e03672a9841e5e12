"""Under torch.distributed with several ranks, a balancer whose weights depend on the batch
would silently change the algorithm (each rank weighs its local losses or Gramian, DDP
averages differently weighted gradients: issue 17). Until the exact version exists,
polytask.backward refuses such a balancer there with one clear message; methods with constant
weights, exact under data parallelism, run. Tested on two real gloo ranks on the loopback
interface, stopped by their process ids with a timeout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WORKER = textwrap.dedent(
    """
    import os, sys, torch, torch.distributed as dist
    import polytask
    from polytask.balancers import create
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['PORT']}",
                            rank=int(os.environ["RANK"]), world_size=2)
    torch.manual_seed(int(os.environ["RANK"]))
    trunk = torch.nn.Linear(4, 8)
    heads = torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])
    z = trunk(torch.randn(16, 4))
    losses = [h(z).square().mean() for h in heads]
    try:
        polytask.backward(losses, create(sys.argv[1]), features=z)
        print("ran")
    except Exception as error:
        print(f"refused: {error}")
    dist.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def two_ranks(balancer: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), balancer],
            env={**os.environ, "RANK": str(rank), "PORT": port, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outputs.append(out.strip())
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, 9)
                proc.wait(timeout=10)
    return outputs


@pytest.mark.parametrize("balancer", ["mgda", "dwa"])
def test_batch_dependent_balancer_is_refused_on_several_ranks(
    tmp_path: Path, balancer: str
) -> None:
    outputs = two_ranks(balancer, tmp_path)
    for out in outputs:
        assert out.startswith("refused:"), out
        assert balancer in out and "2 ranks" in out and "equal" in out


def test_constant_weights_run_on_several_ranks(tmp_path: Path) -> None:
    assert two_ranks("equal", tmp_path) == ["ran", "ran"]


def test_constant_weights_is_a_checked_declaration() -> None:
    from polytask.balancers.registry import with_property
    from polytask.testing import check_balancer

    assert {"equal", "fixed", "prior_loss"} <= set(with_property("constant_weights"))
    assert "dwa" not in with_property("constant_weights")
    check_balancer("fixed")  # its declaration is checked
