"""Step cost of every balancer relative to a plain ``sum(losses).backward()`` step.

Rows ``plain`` (one backward of the summed losses) and ``separate`` (T separate
``loss_t.backward()`` calls) are the references. Model (issue 3's protocol): shared-bottom
MLP, input 256, trunk 3 x 512 with ReLU, heads 512-64-1, MSE, batch 256, Adam, 2 threads.
For T in (2, 8, 32) and each level, each configuration runs in a fresh process; time per step
is the median over repeats, and peak resident memory is the process's maximum RSS.

    python benchmarks/step_cost.py            # quick: T = 2, 8; fewer steps
    python benchmarks/step_cost.py --full     # T = 2, 8, 32
Results: benchmarks/results/step_cost.json and .md
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

# torchjd aggregators run side by side at the parameter level when torchjd is installed.
TORCHJD = {
    "mgda": "MGDA()",
    "pcgrad": "PCGrad()",
    "upgrad": "UPGrad()",
    "dualproj": "DualProj()",
    "imtl_g": "IMTLG()",
    "aligned_mtl": "AlignedMTL()",
    "gradvac": "GradVac()",
}


def torchjd_available() -> bool:
    """Whether torchjd can be imported (it is a test/benchmark-only reference)."""
    import importlib.util

    return importlib.util.find_spec("torchjd") is not None


def balancer_options(name: str, T: int) -> dict[str, object]:
    """Options a balancer needs to be built for T tasks (the values do not change its cost)."""
    import polytask

    options = polytask.balancers.BALANCERS.get(name).options()
    result: dict[str, object] = {}
    if "num_tasks" in options:
        result["num_tasks"] = T
    if name == "prior_loss":
        result["priors"] = [1.0] * T
    if name == "pareto_mtl" and T != 2:
        result["preferences"] = [[1.0] * T, [2.0] + [1.0] * (T - 1)]
    return result


def measure(balancer: str, level: str, T: int, steps: int, repeats: int) -> dict[str, float]:
    """Run in this process: seconds per step of ``balancer`` and of the plain step, timed in
    alternating blocks (so machine drift cancels in the ratio), and peak RSS in MiB."""
    import torch

    import polytask
    from polytask import Task, TaskSet

    torch.set_num_threads(2)
    torch.manual_seed(0)
    names = [f"t{i}" for i in range(T)]
    model = polytask.models.create(
        "shared_bottom",
        heads=dict.fromkeys(names, 1),
        input_dim=256,
        trunk_dims=(512, 512, 512),
        head_dims=(64,),
    )
    tasks = TaskSet([Task(n, "mse") for n in names])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)
    x = torch.randn(256, 256)
    y = {n: torch.randn(256) for n in names}
    reference = balancer.startswith("torchjd:")
    bal = (
        None
        if balancer in ("plain", "separate") or reference
        else polytask.balancers.create(balancer, **balancer_options(balancer, T))
    )
    aggregator = None
    if reference:
        import torchjd.aggregation as tjd_aggregation
        from torchjd.autojac import jac_to_grad, mtl_backward

        aggregator = eval(TORCHJD[balancer.split(":")[1]], vars(tjd_aggregation))

    def step(kind: str) -> None:
        out = model(x)
        losses = tasks.losses(out, y)
        optimizer.zero_grad(set_to_none=True)
        if kind == "plain":
            torch.stack(losses.values_list()).sum().backward()
        elif kind == "separate":  # T separate loss_t.backward() calls
            for loss in losses.values_list():
                loss.backward(retain_graph=True)
        elif reference:  # torchjd's own parameter-level path on the same model
            shared = list(model.shared_parameters())
            mtl_backward(losses.values_list(), features=out.shared_features(), shared_params=shared)
            jac_to_grad(shared, aggregator)
        elif level == "representation":
            polytask.backward(losses, bal, features=out.features)
        else:  # as the Trainer calls it: the shared Jacobian through the branches
            polytask.backward(
                losses, bal, features=out.features, shared_params=model.shared_parameters()
            )
        optimizer.step()

    def block(kind: str) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step(kind)
        return (time.perf_counter() - start) / steps

    for kind in ("plain", balancer):
        for _ in range(3):
            step(kind)
    plain, method = [], []
    for _ in range(repeats):
        plain.append(block("plain"))
        method.append(block(balancer))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": statistics.median(method),
        "plain_seconds": statistics.median(plain),
        "ratio": statistics.median(method) / statistics.median(plain),
        "peak_rss_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--sizes", help="comma-separated task counts (default 2,8 or 2,8,32)")
    parser.add_argument(
        "--one", nargs=3, metavar=("BALANCER", "LEVEL", "T"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    steps, repeats = (20, 5) if args.full else (10, 3)
    if args.one:
        name, level, T = args.one
        print(json.dumps(measure(name, level, int(T), steps, repeats)))
        return
    import torch

    import polytask

    sizes = (2, 8, 32) if args.full else (2, 8)
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    rows = []
    for T in sizes:
        references = [(f"torchjd:{n}", "parameter") for n in TORCHJD] if torchjd_available() else []
        configs = [("separate", "-"), *references] + [
            (b, level)
            for b in polytask.balancers.available()
            for level in (
                ("-",)
                if polytask.balancers.BALANCERS.get(b).factory.needs == "losses"
                else polytask.balancers.BALANCERS.get(b).factory.levels
            )
        ]
        for name, level in configs:
            out = subprocess.run(
                [sys.executable, __file__, "--one", name, level, str(T)]
                + (["--full"] if args.full else []),
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                error = (out.stderr.strip().splitlines() or ["failed"])[-1]
                rows.append({"T": T, "balancer": name, "level": level, "error": error})
                print(f"T={T:<3} {name:<20} {level:<15} FAILED: {error}", flush=True)
                continue
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"T": T, "balancer": name, "level": level, **result})
            print(
                f"T={T:<3} {name:<20} {level:<15} {result['seconds'] * 1e3:8.2f} ms  "
                f"x{result['ratio']:5.2f}  {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": 2,
        "mode": "full" if args.full else "quick",
    }
    (RESULTS / "step_cost.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Step cost (ratio to a plain sum(losses).backward() step)",
        "",
        f"`python benchmarks/step_cost.py {' '.join(sys.argv[1:])}` on {meta['machine']}, "
        f"torch {meta['torch']}, 2 threads.",
        "",
        "Each row's ratio is to a plain step timed in alternating blocks in the same process; "
        "`separate` is T separate `loss_t.backward()` calls (the parameter-level reference).",
        "",
        "| T | balancer | level | ms / step | plain ms / step | ratio | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['T']} | {r['balancer']} | {r['level']} | failed: {r['error']} | | | |"
        if "error" in r
        else f"| {r['T']} | {r['balancer']} | {r['level']} | {r['seconds'] * 1e3:.2f} | "
        f"{r['plain_seconds'] * 1e3:.2f} | {r['ratio']:.2f} | {r['peak_rss_mib']:.0f} |"
        for r in rows
    ]
    (RESULTS / "step_cost.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
