"""Federated MTL (``polytask.federated``) on School's 139 schools: test MSE per algorithm.

Accuracy, the protocol of Liu, Hu, Wu & Smith 2022 ("On privacy and personalization in
cross-silo federated learning", code: kenziyuliu/private-cross-silo-fl, runners/school):
each school a silo; 20% of its rows for testing; inputs z-scored per silo with its own
training rows; ``y`` scaled to ``(y - 1) / 69``; a linear model (ours has an intercept:
their code passes ``bias=False``); 200 rounds; 1 local epoch of batch 32; SGD at lr 0.03;
every silo every round; ``lambda = 0.001`` for Ditto, MR-MTL and MOCHA (their runners'
value). Metric: test MSE per silo in those units, its mean over silos, the example-weighted
mean and the bottom decile; mean +- 95% CI over seeds (the seed draws the split and the
initial model). Their published numbers are under differential privacy at epsilon 6 (FedAvg
~0.0256, Local ~0.0263, MR-MTL ~0.0239, read from their figures); ours are without privacy.

The cost of a round on Flower's engines: ``benchmarks/federated_round_cost.py``.

    python benchmarks/federated.py           # quick: 20 rounds, 1 seed, 4 algorithms
    python benchmarks/federated.py --full    # 200 rounds, 5 seeds, 8 algorithms
Needs the local School copy (``POLYTASK_DATA``). Results: benchmarks/results/federated.*
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

import numpy as np
import torch

from common import markdown_table, meta, write_results
from polytask.evaluation.stats import summarize

ALGORITHMS: dict[str, dict[str, Any]] = {
    "local": {},
    "fedavg": {},
    "fedavg_plus": {},
    "fedprox": {"mu": 0.01},
    "ditto": {"lam": 0.001},
    "mr_mtl": {"lam": 0.001},
    "mocha": {"lam": 0.001},
    "fedem": {"components": 3},
}
HEADER = ["algorithm", "mean MSE", "weighted MSE", "bottom decile", "published (DP, eps 6)",
          "seconds / run"]  # fmt: skip
QUICK = ("local", "fedavg", "ditto", "mr_mtl")
PUBLISHED_DP = {"fedavg": 0.0256, "local": 0.0263, "mr_mtl": 0.0239}  # epsilon = 6


def school_silos(seed: int) -> tuple[list, list]:
    """Each school's rows split 80/20 with ``seed``, inputs z-scored by the silo's own
    training rows (a column constant there is only centred)."""
    import polytask.data
    from polytask.data.client_splits import natural_clients
    from polytask.data.dataset import TensorTaskDataset

    data = polytask.data.load("school", train_fraction=0.8, val_fraction=0.1, seed=seed)
    _, train = natural_clients(data.train)
    _, val = natural_clients(data.val)
    _, test = natural_clients(data.test)
    silos_train, silos_test = [], []
    for fit, extra, held in zip(train, val, test, strict=True):
        x = torch.cat([fit.inputs, extra.inputs])
        y = torch.cat([fit.targets["y"], extra.targets["y"]])
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        silos_train.append(TensorTaskDataset((x - mean) / std, {"y": y}))
        silos_test.append(TensorTaskDataset((held.inputs - mean) / std, {"y": held.targets["y"]}))
    return silos_train, silos_test


def school_setup(seed: int) -> Any:
    import polytask
    from polytask.federated import ClientSetup, LocalConfig

    tasks = polytask.TaskSet([polytask.Task("y", "mse", target_scale=(1.0, 69.0))])

    def make_model() -> Any:
        return polytask.models.create("shared_bottom", heads={"y": 1}, input_dim=28,
                                      trunk_dims=[], head_dims=[])  # fmt: skip

    local = LocalConfig(epochs=1, batch_size=32, lr=0.03)
    return ClientSetup(make_model, tasks, local, seed=seed)


def one_run(job: tuple[str, int, int, dict[str, Any] | None]) -> dict[str, Any]:
    """One algorithm, one seed (``options``: the algorithm's, default :data:`ALGORITHMS`):
    per-silo test MSE and the seconds it took."""
    from polytask.federated import create, evaluate_clients, run_rounds

    name, seed, rounds, options = job
    options = ALGORITHMS[name] if options is None else options
    torch.set_num_threads(1)
    train, test = school_silos(seed)
    setup = school_setup(seed)
    started = time.perf_counter()
    run = run_rounds(create(name, **options), train, setup, rounds)
    scores = evaluate_clients(create(name, **options), run, train, test, setup)
    seconds = time.perf_counter() - started
    per_silo = [s["y"] for s in scores.losses]
    summary = scores.summary("y")
    return {"algorithm": name, "seed": seed, "options": options, "seconds": seconds,
            "summary": summary, "per_silo": per_silo}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--lambdas",
        help="comma-separated lambda values: Ditto, MR-MTL and MOCHA at each, one seed, 200 "
        "rounds (results in federated_lambda.*)",
    )
    args = parser.parse_args()
    if args.lambdas:
        sweep(args, [float(v) for v in args.lambdas.split(",")])
        return
    rounds, seeds, names = (200, 5, list(ALGORITHMS)) if args.full else (20, 1, list(QUICK))
    jobs = [(name, seed, rounds, None) for name in names for seed in range(seeds)]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        runs = []
        for result in pool.imap(one_run, jobs):
            runs.append(result)
            s = result["summary"]
            line = f"{result['algorithm']:<12} seed {result['seed']}: mean {s['mean']:.4f} "
            line += f"bottom decile {s['bottom_decile']:.4f} ({result['seconds']:.0f}s)"
            print(line, flush=True)
    table = []
    for name in names:
        mine = [r for r in runs if r["algorithm"] == name]
        cells = [summarize([r["summary"][k] for r in mine]).format(4)
                 for k in ("mean", "weighted_mean", "bottom_decile")]  # fmt: skip
        published = PUBLISHED_DP.get(name)
        seconds = np.mean([r["seconds"] for r in mine])
        table.append([name, *cells, f"{published}" if published else "-", f"{seconds:.0f}"])
    info = meta("federated.py", rounds=rounds, seeds=seeds, workers=args.workers)
    lines = [
        "# Federated MTL on School (139 silos)",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, one thread per run. "
        f"Protocol of Liu, Hu, Wu & Smith 2022 ({rounds} rounds, 1 local epoch of batch 32, "
        "SGD lr 0.03, linear model, per-silo z-scored inputs, y -> (y - 1) / 69, 20% test "
        f"per silo, lambda 0.001); {seeds} seed(s), mean +- 95% CI. Test MSE per silo: "
        "mean over silos, example-weighted mean, bottom decile (90th percentile).",
        "",
        "The published column is under differential privacy (epsilon 6, from their "
        "figures); ours are without privacy and so should be lower.",
        "",
        *markdown_table(HEADER, table),
        "",
        "The cost of a round on Flower's engines: `federated_round_cost.md`.",
    ]
    write_results("federated", {"meta": info, "runs": runs}, lines)


def sweep(args: argparse.Namespace, lambdas: list[float]) -> None:
    """Ditto, MR-MTL and MOCHA at each ``lambda`` (seed 0, 200 rounds): how much the
    runners' ``lambda = 0.001`` leaves on the table (Liu et al. sweep it)."""
    names = ("ditto", "mr_mtl", "mocha")
    jobs = [(n, 0, 200, {"lam": lam}) for n in names for lam in lambdas]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(one_run, jobs)
    table = [[r["algorithm"], r["options"]["lam"], f"{r['summary']['mean']:.4f}",
              f"{r['summary']['bottom_decile']:.4f}"] for r in runs]  # fmt: skip
    info = meta("federated.py", rounds=200, seeds=1)
    lines = [
        "# School: the personalised methods' lambda (seed 0, 200 rounds)",
        "",
        f"`{info['command']}`; the protocol of `federated.md`. Test MSE per silo: mean over "
        "silos and bottom decile.",
        "",
        *markdown_table(["algorithm", "lambda", "mean MSE", "bottom decile"], table),
    ]
    write_results("federated_lambda", {"meta": info, "runs": runs}, lines)


if __name__ == "__main__":
    main()
