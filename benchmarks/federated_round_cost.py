"""The cost of a federated round on Flower, against the engine-free core, and the memory a
simulated client takes (``polytask.federated``; School's schools as clients).

Round cost: the same rounds (School, a linear model, 1 local epoch of batch 32 per client,
every client every round; FedAvg, and Ditto, which keeps a personal model per client)
through three engines: the engine-free core (``run_rounds``, clients one after another in
one thread), Flower's apps on the in-process grid (``engine: flower``), and Flower's
simulation engine (``engine: simulation``: Ray actors, one CPU each, so as many clients at
once as the machine has cores). Each engine runs ``R1`` and ``R2`` rounds in fresh
processes; seconds per round are ``(t(R2) - t(R1)) / (R2 - R1)``, which takes out the
start-up (Ray's start, the actors' imports), reported on its own as
``t(R1) - R1 * per round``.

Memory: the peak proportional set size (PSS: shared pages divided among the processes
sharing them, read from ``/proc/<pid>/smaps_rollup`` every 0.2 s) summed over the job's
process tree (the driver, Ray's services and actors). Ditto on the simulation engine with
``N`` clients for several ``N``; a least-squares line gives the memory per simulated client
(its slope) and the fixed cost (its intercept), and so how many clients fit in 24 GiB (the
CI machine's memory). A simulated client's own state (its ``context.state``: Ditto's
personal model) stays in the driver between rounds; Ray's actors are reused across clients,
so their number follows the cores, not the clients.

    python benchmarks/federated_round_cost.py          # quick: 20 schools, rounds 1 and 3
    python benchmarks/federated_round_cost.py --full   # 139 schools, rounds 2 and 22
Needs the local School copy (``POLYTASK_DATA``); the simulation rows need Ray
(``polytask[federated]``) and are left out, with a note, without it.
Results: benchmarks/results/federated_round_cost.*
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import markdown_table, meta, write_results

ENGINES = ("core", "flower", "simulation")
WIDTHS = (0, 512)  # School's linear model; two hidden layers of 512 (~0.28 M parameters)
GIB = 1024**3


def run_job(engine: str, algorithm: str, clients: int, rounds: int, width: int) -> float:
    """Seconds the engine takes for ``rounds`` rounds of ``algorithm`` on the first
    ``clients`` schools (data loading and imports before the clock starts); ``width``: 0
    for School's linear model, else two hidden layers of that width."""
    import dataclasses

    import torch

    import polytask
    from federated import school_setup, school_silos
    from polytask.federated import create, run_rounds
    from polytask.federated.flower import (
        FlowerServer,
        client_source,
        make_client_app,
        run_in_process,
    )

    torch.set_num_threads(1)
    train = school_silos(0)[0][:clients]
    setup = school_setup(0)
    if width:
        dims = [width, width]
        setup = dataclasses.replace(
            setup,
            make_model=lambda: polytask.models.create(
                "shared_bottom", heads={"y": 1}, input_dim=28, trunk_dims=dims, head_dims=[]
            ),
        )
    options = {"lam": 0.001} if algorithm == "ditto" else {}
    started = time.perf_counter()
    if engine == "core":
        run_rounds(create(algorithm, **options), train, setup, rounds)
        return time.perf_counter() - started
    server = FlowerServer(create(algorithm, **options), setup, rounds, clients,
                          evaluate_rounds=())  # fmt: skip
    app = make_client_app(create(algorithm, **options), setup, client_source(train))
    started = time.perf_counter()
    if engine == "flower":
        run_in_process(server.app(), app, clients)
    else:
        from polytask.federated.flower.simulation import run_simulation

        run_simulation(server.app(), app, clients)
    return time.perf_counter() - started


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (from ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue += children.get(pid, [])
    return tree


def pss_bytes(pids: list[int]) -> int:
    """The summed proportional set size of ``pids`` (processes gone meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def measured(
    engine: str, algorithm: str, clients: int, rounds: int, width: int = 0
) -> dict[str, Any]:
    """Run one job in a fresh process; its seconds and the peak PSS of its process tree."""
    job = f"{engine},{algorithm},{clients},{rounds},{width}"
    command = [sys.executable, __file__, "--job", job]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, pss_bytes(process_tree(child.pid)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, _ = child.communicate(timeout=1200)
    finally:
        done.set()
        sampler.join()
        if child.poll() is None:
            child.kill()
    if child.returncode != 0:
        raise RuntimeError(f"{command} failed with exit status {child.returncode}")
    seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
    return {"engine": engine, "algorithm": algorithm, "clients": clients, "rounds": rounds,
            "width": width, "seconds": seconds, "peak_pss": peak}  # fmt: skip


def per_round(short: dict[str, Any], long: dict[str, Any]) -> tuple[float, float]:
    """Seconds per round and start-up seconds from a short and a long run."""
    rate = (long["seconds"] - short["seconds"]) / (long["rounds"] - short["rounds"])
    return rate, short["seconds"] - short["rounds"] * rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        engine, algorithm, clients, rounds, width = args.job.split(",")
        seconds = run_job(engine, algorithm, int(clients), int(rounds), int(width))
        print(json.dumps({"seconds": seconds}), flush=True)
        return
    has_ray = importlib.util.find_spec("ray") is not None
    engines = [e for e in ENGINES if has_ray or e != "simulation"]
    clients, (r1, r2) = (139, (2, 22)) if args.full else (20, (2, 8))
    counts = (35, 70, 139) if args.full else (10, 20)
    jobs = []
    for algorithm in ("fedavg", "ditto"):
        for engine in engines:
            for rounds in (r1, r2):
                jobs.append(measured(engine, algorithm, clients, rounds))
                print(jobs[-1], flush=True)
    if has_ray:
        for width in WIDTHS:
            for count in counts:
                if count != clients or width:
                    jobs.append(measured("simulation", "ditto", count, r1, width))
                    print(jobs[-1], flush=True)
    write(args, jobs, engines, clients, (r1, r2), counts, has_ray)


def parameters(width: int) -> int:
    """Parameters of the model with ``width`` (see :func:`run_job`): 28 inputs, 1 output."""
    if not width:
        return 28 + 1
    return 28 * width + width + width * width + width + width + 1


def memory_fit(jobs: list[dict[str, Any]], rounds: int, width: int) -> dict[str, Any]:
    """A least-squares line through the simulation's peak memory against its clients."""
    points = sorted({(j["clients"], j["peak_pss"]) for j in jobs
                     if j["engine"] == "simulation" and j["algorithm"] == "ditto"
                     and j["rounds"] == rounds and j["width"] == width})  # fmt: skip
    n, peak = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    slope, intercept = np.polyfit(n, peak, 1)
    return {"points": points, "bytes_per_client": float(slope), "fixed_bytes": float(intercept),
            "personal_model_bytes": 4 * parameters(width),
            "clients_in_24_gib": float((24 * GIB - intercept) / max(slope, 1.0))}  # fmt: skip


def memory_row(width: int, fit: dict[str, Any]) -> list[str]:
    model = "linear (School)" if not width else f"2 x {width} hidden"
    return [model, ", ".join(f"{c}: {p / GIB:.2f}" for c, p in fit["points"]),
            f"{fit['bytes_per_client'] / 2**20:.2f}", f"{fit['personal_model_bytes'] / 2**20:.2f}",
            f"{fit['fixed_bytes'] / GIB:.2f}", f"{fit['clients_in_24_gib']:,.0f}"]  # fmt: skip


def find(jobs: list[dict[str, Any]], **key: Any) -> dict[str, Any]:
    return next(j for j in jobs if all(j[k] == v for k, v in key.items()))


def write(args: argparse.Namespace, jobs: list[dict[str, Any]], engines: list[str],
          clients: int, rounds: tuple[int, int], counts: tuple[int, ...],
          has_ray: bool) -> None:  # fmt: skip
    r1, r2 = rounds
    table, cost = [], {}
    for algorithm in ("fedavg", "ditto"):
        core_rate = per_round(*(find(jobs, engine="core", algorithm=algorithm, rounds=r)
                                for r in rounds))[0]  # fmt: skip
        for engine in engines:
            short, long = (find(jobs, engine=engine, algorithm=algorithm, rounds=r) for r in rounds)
            rate, start = per_round(short, long)
            cost[f"{algorithm}/{engine}"] = {"per_round": rate, "start": start}
            table.append([algorithm, engine, f"{rate:.3f}", f"{rate / core_rate:.2f}",
                          f"{start:.1f}", f"{long['peak_pss'] / GIB:.2f}"])  # fmt: skip
    info = meta("federated_round_cost.py", clients=clients, rounds=list(rounds))
    lines = [
        "# Seconds per federated round: Flower against the engine-free core",
        "",
        f"`{info['command']}` on {info['machine']}, {info['cpus']} CPUs, torch "
        f"{info['torch']}. School, {clients} schools as clients, all every round, a linear "
        "model, 1 local epoch of batch 32. Each engine ran "
        f"{r1} and {r2} rounds in fresh processes: s / round = (t({r2}) - t({r1})) / "
        f"{r2 - r1}; start-up = t({r1}) - {r1} x s / round. The core and the in-process grid "
        "train the clients one after another on one thread; the simulation engine runs one "
        f"Ray actor per CPU ({info['cpus']} clients at once). Peak memory: the summed PSS "
        f"of the {r2}-round job's processes.",
        "",
        *markdown_table(
            ["algorithm", "engine", "s / round", "x core", "start-up s", "peak GiB"], table
        ),
    ]
    fits: dict[int, dict[str, Any]] = {}
    if has_ray:
        lines += ["", f"## Memory of Flower's simulation engine (Ditto, {r1} rounds)", ""]
        fits = {width: memory_fit(jobs, r1, width) for width in WIDTHS}
        rows = [memory_row(width, fit) for width, fit in fits.items()]
        header = ["model", "clients: peak GiB", "MiB / client (slope)", "personal model MiB",
                  "fixed GiB", "clients in 24 GiB"]  # fmt: skip
        lines += markdown_table(header, rows)
        lines += [
            "",
            "The slope is the memory each further simulated client adds (a least-squares "
            "line through the peaks); the fixed part is the driver, Ray's services and one "
            "actor per CPU. What a client keeps between rounds (Ditto: its personal model, "
            "in its context in the driver) is the slope's floor: compare the two columns.",
        ]
    else:
        lines += ["", "Ray is not installed: the simulation engine was not measured "
                  "(`pip install 'polytask[federated]'`)."]  # fmt: skip
    write_results(
        "federated_round_cost",
        {"meta": info, "jobs": jobs, "cost": cost, "memory_fit": fits, "counts": list(counts)},
        lines,
    )


if __name__ == "__main__":
    main()
