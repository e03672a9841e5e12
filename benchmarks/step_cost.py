"""Step cost of every balancer relative to a plain ``sum(losses).backward()`` step.

Rows ``plain`` (one backward of the summed losses) and ``separate`` (T separate
``loss_t.backward()`` calls) are the references. Model (issue 3's protocol): shared-bottom
MLP, input 256, trunk 3 x 512 with ReLU, heads 512-64-1, MSE, batch 256, Adam, 2 threads.
For T in (2, 8, 32) and each level, each configuration runs in fresh processes (three in
``--full``): in each, the method and its references are timed in alternating blocks whose
order rotates from repeat to repeat, and a row's ratio is the median of the block-by-block
ratios pooled over its processes (one process alone can sit 10% off: memory layout, which
core). Peak resident memory is the processes' largest maximum RSS; minor page faults per
step (median per kind) show what the allocator costs (see ``--keep-freed-memory``).

A second family, ``--family user`` (issue 22; ``benchmarks/step_cost_user.py``), times a
user's own ``nn.Module`` with every Gramian method, the losses as a list and as one stacked
tensor, against the same references and torchjd's ``mtl_backward`` on that model.

    python benchmarks/step_cost.py                       # quick: both families, fewer steps
    python benchmarks/step_cost.py --full                # polytask's models, T = 2, 8, 32
    python benchmarks/step_cost.py --full --family user  # the user model, T = 8, 32
Results: benchmarks/results/step_cost.json and .md (user model: step_cost_user_model.*)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from common import RESULTS, markdown_table, meta, missed_line, write_results
from step_cost_user import measure_user, render_user, summarise_user

TARGET_SIZES = (8, 32)  # issue 3 sets its targets at T = 8 and T = 32

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


def measure(balancer: str, level: str, T: int, steps: int, repeats: int) -> dict[str, object]:
    """Run in this process: seconds per step of ``balancer`` and of the plain step (and of T
    separate backward calls at the parameter level), timed in alternating blocks whose order
    rotates every repeat (so drift cancels in the ratios and no kind always follows the same
    other), the block-by-block ratios, peak RSS in MiB and minor page faults per step."""
    import contextlib

    import torch

    import polytask
    from polytask import Task, TaskSet
    from polytask.gradients.linear import LinearTaps

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

    taps = LinearTaps(model.shared_modules()) if level == "parameter" and not reference else None

    def step(kind: str) -> None:
        with taps if kind == balancer and taps is not None else contextlib.nullcontext():
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
        else:  # as the Trainer calls it: through the branches, with the linear layers tapped
            polytask.backward(
                losses, bal, features=out.features, shared_params=model.shared_parameters(),
                taps=taps,
            )  # fmt: skip
        optimizer.step()

    def block(kind: str) -> float:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(steps):
            step(kind)
        seconds = (time.perf_counter() - start) / steps
        page_faults[kind].append(
            (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
        )
        return seconds

    # Parameter-level rows are also timed against T separate backward calls, in the same
    # alternating blocks, since that is their target's reference.
    kinds = ["plain", balancer]
    if level == "parameter":
        kinds.append("separate")
    for kind in kinds:
        for _ in range(3):
            step(kind)
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    page_faults: dict[str, list[float]] = {kind: [] for kind in kinds}  # minor, per step
    for repeat in range(repeats):
        shift = repeat % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            times[kind].append(block(kind))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, object] = {
        "seconds": times[balancer],
        "plain_seconds": times["plain"],
        "ratios": paired_ratios(times[balancer], times["plain"]),
        "peak_rss_mib": peak,
        "page_faults_per_step": {kind: statistics.median(v) for kind, v in page_faults.items()},
    }
    if level == "parameter":
        result["separate_seconds"] = times["separate"]
        result["ratios_to_separate"] = paired_ratios(times[balancer], times["separate"])
    return result


def paired_ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """The ratios of blocks timed in the same repeat (drift cancels)."""
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def summarise(runs: list[dict]) -> dict[str, object]:
    """One row from the runs of a configuration in several processes: medians of the pooled
    block times and block ratios, the quartiles of the ratios, and the largest peak RSS."""

    def pooled(key: str) -> list[float]:
        return [value for run in runs for value in run[key]]

    row: dict[str, object] = {
        "seconds": statistics.median(pooled("seconds")),
        "plain_seconds": statistics.median(pooled("plain_seconds")),
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
        "processes": len(runs),
    }
    for key, name in (("ratios", "ratio"), ("ratios_to_separate", "ratio_to_separate")):
        if key in runs[0]:
            ratios = pooled(key)
            row[name] = statistics.median(ratios)
            quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            row[f"{name}_quartiles"] = [quartiles[0], quartiles[2]]
    if "separate_seconds" in runs[0]:
        row["separate_seconds"] = statistics.median(pooled("separate_seconds"))
    if "page_faults_per_step" in runs[0]:
        row["page_faults_per_step"] = {
            kind: statistics.median(run["page_faults_per_step"][kind] for run in runs)
            for kind in runs[0]["page_faults_per_step"]
        }
    return row


def target(name: str, level: str, T: int) -> tuple[str, float] | None:
    """Issue 3's target for a row: (reference, largest ratio), or None (references, GradDrop:
    the targets name loss-weighting and Gramian methods, at T = 8 and 32)."""
    import polytask

    if T not in TARGET_SIZES or name == "separate" or name.startswith("torchjd:"):
        return None
    needs = polytask.balancers.BALANCERS.get(name).factory.needs
    if needs == "losses":
        return ("plain", 1.05)
    if needs != "gramian":
        return None
    return ("plain", 1.3) if level == "representation" else ("separate", 1.15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--sizes", help="comma-separated task counts (default 2,8 or 2,8,32)")
    parser.add_argument(
        "--one", nargs=3, metavar=("BALANCER", "LEVEL", "T"), help=argparse.SUPPRESS
    )
    parser.add_argument("--render", action="store_true", help="redo the table from the JSON")
    parser.add_argument(
        "--family",
        choices=("polytask", "user", "both"),
        help="polytask's models, a user's plain nn.Module, or both (default: both in the "
        "quick run, polytask with --full)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="measure with polytask.training.allocator.keep_freed_memory() applied in each "
        "process, as Trainer.fit does on the CPU (results in step_cost_keep_freed_memory.*)",
    )
    args = parser.parse_args()
    family = args.family or ("polytask" if args.full else "both")
    results_name = "step_cost_keep_freed_memory" if args.keep_freed_memory else "step_cost"
    steps, repeats, processes = (10, 3, 3) if args.full else (10, 3, 1)
    if args.one and family == "user":
        name, level, T = args.one
        aggregator = torchjd_aggregator(name)
        options = balancer_options(name, int(T))
        print(json.dumps(measure_user(name, options, level, int(T), steps, repeats, aggregator)))
        return
    if args.render:
        rerender("step_cost_user_model" if family == "user" else results_name)
        return
    if family in ("user", "both"):  # two processes per configuration in --full (an hour)
        run_user_family(args, steps, repeats, min(processes, 2))
    if family == "user":
        return
    if args.one:
        name, level, T = args.one
        if args.keep_freed_memory:
            from polytask.training.allocator import keep_freed_memory

            keep_freed_memory()
        print(json.dumps(measure(name, level, int(T), steps, repeats)))
        return

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
            row = run_configuration(name, level, T, args.full, processes, args.keep_freed_memory)
            rows.append({"T": T, "balancer": name, "level": level, **row})
            if "error" in row:
                print(f"T={T:<3} {name:<20} {level:<15} FAILED: {row['error']}", flush=True)
                continue
            print(
                f"T={T:<3} {name:<20} {level:<15} {row['seconds'] * 1e3:8.2f} ms  "
                f"x{row['ratio']:5.2f}  {row['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    info = meta("step_cost.py", mode="full" if args.full else "quick", steps=steps,
                repeats=repeats, processes=processes,
                malloc=KEPT if args.keep_freed_memory else "default")  # fmt: skip
    write_results(results_name, {"meta": info, "rows": rows}, render(rows, info))


def torchjd_aggregator(name: str) -> str | None:
    """torchjd's aggregator for ``name`` when torchjd is installed and has the method."""
    return TORCHJD.get(name) if torchjd_available() else None


def run_user_family(args: argparse.Namespace, steps: int, repeats: int, processes: int) -> None:
    """Time the user-model family (every Gramian method at each level it supports, T = 8
    and 32 in ``--full``, T = 8 otherwise) and write ``step_cost_user_model.*``."""
    import polytask

    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (
        TARGET_SIZES if args.full else (8,))  # fmt: skip
    rows = []
    for T in sizes:
        for name in polytask.balancers.available():
            factory = polytask.balancers.BALANCERS.get(name).factory
            if factory.needs != "gramian":
                continue
            for level in factory.levels:
                runs = []
                for _ in range(processes):
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", name, level, str(T), "--family",
                         "user", *(["--full"] if args.full else [])],
                        capture_output=True, text=True,
                    )  # fmt: skip
                    if out.returncode != 0:
                        runs = [{"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}]
                        break
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                row = runs[0] if "error" in runs[0] else summarise_user(runs)
                rows.append({"T": T, "balancer": name, "level": level, **row})
                shown = row.get("error") or "  ".join(
                    f"{k} {v:.2f}" for k, v in row["ratios"].items()
                )
                print(f"user T={T:<3} {name:<18} {level:<15} {shown}", flush=True)
    info = meta("step_cost.py", mode="full" if args.full else "quick", family="user",
                steps=steps, repeats=repeats, processes=processes)  # fmt: skip
    write_results("step_cost_user_model", {"meta": info, "rows": rows}, render_user(rows, info))


# What the JSON's meta records for --keep-freed-memory runs.
KEPT = "polytask.training.allocator.keep_freed_memory()"


def run_configuration(
    name: str, level: str, T: int, full: bool, processes: int, keep_memory: bool = False
) -> dict[str, object]:
    """Measure one configuration in ``processes`` fresh processes and pool the runs
    (:func:`summarise`); ``{"error": message}`` if a run fails. ``keep_memory`` applies
    :func:`polytask.training.allocator.keep_freed_memory` in them."""
    flags = (["--full"] if full else []) + (["--keep-freed-memory"] if keep_memory else [])
    runs = []
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, __file__, "--one", name, level, str(T), *flags],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return summarise(runs)


def render(rows: list[dict], info: dict) -> list[str]:
    """Mark each row's target and write the markdown lines of the table."""
    steps, repeats = info["steps"], info["repeats"]
    processes = info.get("processes", 1)
    for row in rows:
        row.pop("target", None)
        goal = None if "error" in row else target(row["balancer"], row["level"], row["T"])
        if goal is not None:
            reference, limit = goal
            value = row["ratio"] if reference == "plain" else row["ratio_to_separate"]
            row["target"] = {"reference": reference, "limit": limit, "met": value <= limit}
    missed = [r for r in rows if "target" in r and not r["target"]["met"]]
    lines = [
        "# Step cost (ratio to a plain sum(losses).backward() step)",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, 2 threads. Model: "
        "shared-bottom MLP 256-512-512-512, heads 512-64-1, MSE, batch 256, Adam."
        + ("" if info.get("malloc", "default") == "default" else
           f" Each process first calls `{info['malloc']}` (glibc's malloc keeps freed memory "
           "instead of returning it to the OS every step, as `Trainer.fit` does on the CPU)."),
        "",
        f"Each configuration runs in {processes} fresh process(es); in each, the method, the "
        "plain step and (at the parameter level) T separate `loss_t.backward()` calls are "
        f"timed in alternating blocks of {steps} steps, {repeats} times, the order of the "
        "blocks rotating from repeat to repeat, and a ratio is the median of the "
        "block-by-block ratios pooled over the processes (quartiles in the JSON). "
        "Targets (issue 3, at T = 8 and 32): loss weighting <= 1.05x plain; Gramian "
        "methods <= 1.3x plain at the representation level and <= 1.15x separate at the "
        "parameter level. "
        "Timing noise on this shared 2-core machine is about +-10%.",
        "",
        missed_line(missed, sum("target" in r for r in rows)),
        "",
    ]  # fmt: skip
    table = []
    for r in rows:
        if "error" in r:
            table.append([r["T"], r["balancer"], r["level"], f"failed: {r['error']}"] + [""] * 5)
            continue
        goal = r.get("target")
        table.append(
            [
                r["T"], r["balancer"], r["level"], f"{r['seconds'] * 1e3:.2f}",
                f"{r['ratio']:.2f}",
                f"{r['ratio_to_separate']:.2f}" if "ratio_to_separate" in r else "-",
                "-" if goal is None else f"<= {goal['limit']} x {goal['reference']}",
                "-" if goal is None else ("yes" if goal["met"] else "**no**"),
                f"{r['peak_rss_mib']:.0f}",
            ]
        )  # fmt: skip
    lines += markdown_table(
        ["T", "balancer", "level", "ms / step", "x plain", "x separate", "target", "met",
         "peak RSS MiB"],
        table,
    )  # fmt: skip
    return lines


def rerender(name: str) -> None:
    """Redo the targets and the markdown of results ``name`` from its committed JSON (no
    timing)."""
    payload = json.loads((RESULTS / f"{name}.json").read_text())
    draw = render_user if name == "step_cost_user_model" else render
    write_results(name, payload, draw(payload["rows"], payload["meta"]), RESULTS)


if __name__ == "__main__":
    main()
