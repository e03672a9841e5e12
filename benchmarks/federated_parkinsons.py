"""Federated multi-task clients: Parkinson's telemonitoring, each of the 42 patients a client
with two tasks (motor and total UPDRS from 16 voice measures, age, sex and test time).

Each patient's recordings split 60/20/20 (``parkinsons {mode: patient_targets}``), targets
standardised by the training rows; an MLP (trunk 32, heads 16) on every client; 1 local
epoch of batch 32, SGD at lr 0.03, 30 rounds, every client every round. The tasks inside a
client are balanced by equal weighting or by MGDA (representation level), under Local
training, FedAvg and Ditto (lambda 0.1). Metric: each client's test MSE per task
(standardised units), its mean over clients and the bottom decile (90th percentile), mean
+- 95% CI over seeds (the seed draws the split and the initial model).

    python benchmarks/federated_parkinsons.py           # quick: 1 seed, 10 rounds
    python benchmarks/federated_parkinsons.py --full    # 5 seeds, 30 rounds
Needs the local Parkinson's copy (``POLYTASK_DATA``). Results:
benchmarks/results/federated_parkinsons.*
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

from common import markdown_table, meta, write_results
from polytask.evaluation.stats import summarize

ALGORITHMS = {"local": {}, "fedavg": {}, "ditto": {"lam": 0.1}}
BALANCERS = ("equal", "mgda")
TASKS = ("motor_UPDRS", "total_UPDRS")


def one_run(job: tuple[str, str, int, int]) -> dict[str, Any]:
    """One algorithm and balancer, one seed: each client's test MSE per task."""
    import torch

    from polytask.federated.evaluation import evaluate_clients
    from polytask.federated.experiment import FederatedConfig
    from polytask.federated.registry import create
    from polytask.federated.rounds import run_rounds
    from polytask.federated.run import prepare

    algorithm, balancer, seed, rounds = job
    torch.set_num_threads(1)
    config = FederatedConfig.from_yaml(
        "src/polytask/configs/federated/parkinsons.yaml",
        [f"seed={seed}", f"dataset.options.seed={seed}", f"local.balancer={balancer}"],
    )
    ready = prepare(config)  # the packaged local training, the seed's model
    data, setup = ready.data, ready.setup
    started = time.perf_counter()
    run = run_rounds(create(algorithm, **ALGORITHMS[algorithm]), data.train, setup, rounds)
    scores = evaluate_clients(create(algorithm, **ALGORITHMS[algorithm]), run, data.train,
                              data.test, setup)  # fmt: skip
    return {"algorithm": algorithm, "balancer": balancer, "seed": seed,
            "seconds": time.perf_counter() - started,
            "summary": {t: scores.summary(t) for t in TASKS}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    seeds, rounds = (5, 30) if args.full else (1, 10)
    jobs = [(a, b, s, rounds) for a in ALGORITHMS for b in BALANCERS for s in range(seeds)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.map(one_run, jobs)
    table = []
    for algorithm in ALGORITHMS:
        for balancer in BALANCERS:
            mine = [r for r in runs if (r["algorithm"], r["balancer"]) == (algorithm, balancer)]
            cells = [
                summarize([r["summary"][t][k] for r in mine]).format(3)
                for t in TASKS for k in ("mean", "bottom_decile")
            ]  # fmt: skip
            table.append([algorithm, balancer, *cells])
            print(algorithm, balancer, cells, flush=True)
    info = meta("federated_parkinsons.py", seeds=seeds, rounds=rounds)
    header = ["algorithm", "balancer in each client", "motor mean", "motor bottom decile",
              "total mean", "total bottom decile"]  # fmt: skip
    lines = [
        "# Federated multi-task clients: Parkinson's, 42 patients x 2 tasks",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, one thread per "
        f"run. {rounds} rounds, 1 local epoch of batch 32, SGD lr 0.03, MLP trunk 32 and "
        f"heads 16, Ditto lambda 0.1; {seeds} seed(s), mean +- 95% CI. Test MSE per client "
        "in standardised units (1 = predicting the training mean): the mean over clients "
        "and the bottom decile (90th percentile).",
        "",
        *markdown_table(header, table),
    ]
    write_results("federated_parkinsons", {"meta": info, "runs": runs}, lines)


if __name__ == "__main__":
    main()
