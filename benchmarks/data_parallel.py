"""Data-parallel steps (``polytask.distributed``): one process against two, and what
polytask's reductions add to plain DDP.

The step-cost model (shared-bottom MLP, input 256, trunk 3 x 512, ``T`` heads 512-64-1,
MSE, Adam, global batch 256), one thread per process, gloo on the loopback interface. For
``T`` = 8 and 32 and both levels, the plain step (``sum(losses).backward()``) and
polytask's step with ``equal``, ``mgda``, ``upgrad`` and ``pcgrad`` are timed in
alternating blocks whose order rotates, in one process on the whole batch and in two
processes on half of it each, the model wrapped in DDP (which averages the gradients;
``P`` numbers per step). polytask's own collectives are timed and counted per step: at
the representation level ``T + 1`` counts, ``T + T^2`` for the losses and Gramian, ``T``
weights; at the parameter level the ``T x P`` Jacobian instead of the Gramian.

"Added over plain DDP": ``(t2(method) / t2(plain)) / (t1(method) / t1(plain))``, the
factor by which going from one process to two changes a method's cost relative to the
plain step; the target is at most 1.05 at the representation level.

    python benchmarks/data_parallel.py          # quick: T = 8, few steps
    python benchmarks/data_parallel.py --full   # T = 8 and 32, results committed
Results: benchmarks/results/data_parallel.*
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from common import markdown_table, meta, write_results

METHODS = ("equal", "mgda", "upgrad", "pcgrad")
LEVELS = ("representation", "parameter")
BATCH = 256


def rank_job(T: int, steps: int, repeats: int) -> dict[str, Any]:
    """In one rank (``WORLD``, ``RANK``, ``PORT`` in the environment): seconds per step of
    every kind at both levels, and polytask's collective seconds and bytes per step."""
    import torch
    import torch.distributed as dist

    import polytask
    import polytask.distributed as ptd
    from polytask.distributed.reduction import ExactReduction
    from polytask.gradients import ranks

    world, rank = int(os.environ["WORLD"]), int(os.environ["RANK"])
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['PORT']}",
                                rank=rank, world_size=world)  # fmt: skip
        ptd.enable()
    spent = {"seconds": 0.0, "bytes": 0}

    class Timed(ExactReduction):
        """The reductions, timed and counted."""

        def _timed(self, fn: Any, size: int, *args: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args)
            spent["seconds"] += time.perf_counter() - start
            spent["bytes"] += size
            return out

        def prepare(self, items: Any) -> Any:
            return self._timed(super().prepare, 8 * (len(items.values) + 1), items)

        def weights_inputs(self, gramian: Any, losses: Any) -> Any:
            size = 4 * (losses.numel() + (0 if gramian is None else gramian.numel()))
            return self._timed(super().weights_inputs, size, gramian, losses)

        def same_weights(self, weights: Any) -> Any:
            return self._timed(super().same_weights, 4 * weights.numel(), weights)

        def mean_blocks(self, blocks: Any) -> Any:
            size = 4 * sum(b.numel() for b in blocks)
            return self._timed(super().mean_blocks, size, blocks)

    if world > 1:
        ranks.install(Timed())
    torch.manual_seed(0)
    names = [f"t{i}" for i in range(T)]
    model = polytask.models.create(
        "shared_bottom", heads=dict.fromkeys(names, 1), input_dim=256,
        trunk_dims=(512, 512, 512), head_dims=(64,),
    )  # fmt: skip
    tasks = polytask.TaskSet([polytask.Task(n, "mse") for n in names])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)
    rows = BATCH // world
    x = torch.randn(BATCH, 256)[rank * rows : (rank + 1) * rows]
    y = {n: torch.randn(BATCH)[rank * rows : (rank + 1) * rows] for n in names}
    balancers = {m: polytask.balancers.create(m) for m in METHODS}
    kinds = ["plain"] + [
        f"{m}@{level}" for level in LEVELS for m in METHODS
        if (m == "equal" and level == "representation") or m != "equal"
    ]  # fmt: skip

    def step(kind: str) -> None:
        out = net(x)
        losses = tasks.losses(out, y)
        optimizer.zero_grad(set_to_none=True)
        if kind == "plain":
            torch.stack(losses.values_list()).sum().backward()
        else:
            method, level = kind.split("@")
            shared = list(model.shared_parameters()) if level == "parameter" else None
            polytask.backward(losses, balancers[method], features=out.features,
                              shared_params=shared)  # fmt: skip
        optimizer.step()

    def block(kind: str) -> tuple[float, float, int]:
        if world > 1:
            dist.barrier()
        spent.update(seconds=0.0, bytes=0)
        start = time.perf_counter()
        for _ in range(steps):
            step(kind)
        return ((time.perf_counter() - start) / steps, spent["seconds"] / steps,
                spent["bytes"] // steps)  # fmt: skip

    for kind in kinds:
        step(kind)
    times: dict[str, list[tuple[float, float, int]]] = {k: [] for k in kinds}
    for repeat in range(repeats):
        shift = repeat % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            times[kind].append(block(kind))
    parameters = sum(p.numel() for p in model.parameters())
    if world > 1:
        dist.destroy_process_group()
    return {
        kind: {
            "seconds": statistics.median(t[0] for t in values),
            "collective_seconds": statistics.median(t[1] for t in values),
            "collective_bytes": values[-1][2],
            "gradient_bytes": 4 * parameters,
        }
        for kind, values in times.items()
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_world(world: int, T: int, steps: int, repeats: int) -> dict[str, Any]:
    """Rank 0's measurements of a ``world``-process run (ranks stopped by id on failure)."""
    port = str(free_port())
    command = [sys.executable, __file__, "--rank-job", f"{T},{steps},{repeats}"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "WORLD": str(world), "RANK": str(r),
                                   "PORT": port, "OMP_NUM_THREADS": "1"})
             for r in range(world)]  # fmt: skip
    try:
        outs = [p.communicate(timeout=3600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a rank failed: {[p.returncode for p in procs]}")
    return json.loads(outs[0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--rank-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_job:
        T, steps, repeats = (int(v) for v in args.rank_job.split(","))
        print(json.dumps(rank_job(T, steps, repeats)), flush=True)
        return
    sizes, steps, repeats = ((8, 32), 5, 3) if args.full else ((8,), 2, 1)
    rows, results = [], {}
    for T in sizes:
        one, two = run_world(1, T, steps, repeats), run_world(2, T, steps, repeats)
        results[T] = {"one": one, "two": two}
        for kind in two:
            if kind == "plain":
                continue
            added = (two[kind]["seconds"] / two["plain"]["seconds"]) / (
                one[kind]["seconds"] / one["plain"]["seconds"]
            )
            method, level = kind.split("@")
            rows.append([level, T, method, f"{1e3 * one[kind]['seconds']:.0f}",
                         f"{1e3 * two[kind]['seconds']:.0f}",
                         f"{one[kind]['seconds'] / two[kind]['seconds']:.2f}",
                         f"{two[kind]['collective_bytes'] / 1024:,.1f}",
                         f"{1e3 * two[kind]['collective_seconds']:.1f}",
                         f"{two[kind]['gradient_bytes'] / 2**20:.1f}", f"{added:.3f}"])  # fmt: skip
        print(f"T = {T} done", flush=True)
    info = meta("data_parallel.py", steps=steps, repeats=repeats)
    plain = {T: (r["one"]["plain"]["seconds"], r["two"]["plain"]["seconds"])
             for T, r in results.items()}  # fmt: skip
    lines = [
        "# Data-parallel steps: one process against two",
        "",
        f"`{info['command']}` on {info['machine']}, {info['cpus']} CPUs, torch {info['torch']}; "
        "one thread per process, gloo on the loopback interface, the model in DDP on two "
        "processes. Step-cost model (trunk 3 x 512, heads 512-64-1), global batch 256 (128 "
        f"per rank), Adam; medians of {repeats} rotating blocks of {steps} steps. The "
        "parameter level takes the shared parameters' exact Jacobian in both runs (the "
        "layer-tap Gramian, faster in one process, pairs one rank's samples only).",
        "",
        "Plain step (`sum(losses).backward()`), ms: "
        + "; ".join(
            f"T = {T}: {1e3 * a:.0f} in one process, {1e3 * b:.0f} on two"
            for T, (a, b) in plain.items()
        ),
        "",
        *markdown_table(
            [
                "level",
                "T",
                "method",
                "1 proc ms",
                "2 procs ms",
                "speed-up",
                "polytask comm KiB / step",
                "polytask comm ms / step",
                "DDP gradients MiB / step",
                "added over plain DDP",
            ],
            rows,
        ),
        "",
        "polytask comm: the engine's own collectives on two processes (label counts, losses, "
        "Gramian or Jacobian, weights), timed where they run; DDP's gradient all-reduce "
        "(`4 P` bytes) overlaps the backward. Added over plain DDP: "
        "`(t2(method) / t2(plain)) / (t1(method) / t1(plain))`; target <= 1.05 at the "
        "representation level.",
    ]
    write_results("data_parallel", {"meta": info, "results": results}, lines)


if __name__ == "__main__":
    main()
