"""Parkinson's telemonitoring per patient (42 regression tasks): do gradient methods train?

The issue-14 check: before absent tasks were handled, a patient with no recording in a batch
stopped MGDA and FAMO (their test error stayed at the untrained one). Shared bottom (trunk
64-32, heads 16), Adam 1e-3, batch 128, representation level, 3 epochs (``--full``: also
20), seed 0; mean test MSE over patients in UPDRS units, with raw targets and with targets
standardised per patient on its training rows (errors converted back to UPDRS units).
Needs the local data set (``POLYTASK_DATA``).

    python benchmarks/parkinsons_patients.py           # 3 epochs
    python benchmarks/parkinsons_patients.py --full    # 3 and 20 epochs
Results: benchmarks/results/parkinsons_patients.json and .md
"""

from __future__ import annotations

import argparse
import statistics

import torch

import polytask
import polytask.data
from common import markdown_table, meta, write_results
from polytask.training import Trainer, TrainerConfig, build_optimizer

BALANCERS = ("equal", "upgrad", "mgda", "famo")


def mean_test_mse(balancer: str, scaled: bool, epochs: int) -> float:
    """One run's mean test MSE over patients, in UPDRS units (``epochs=0``: untrained)."""
    torch.manual_seed(0)
    data = polytask.data.load("parkinsons", mode="patients")
    scale: dict[str, float] = {}
    if scaled:
        for task, target in data.train.targets.items():
            labelled = target[~torch.isnan(target)]
            mean, std = float(labelled.mean()), float(labelled.std())
            scale[task] = std
            for split in (data.train, data.val, data.test):
                split.targets[task] = (split.targets[task] - mean) / std
    tasks = polytask.TaskSet(data.tasks)
    model = polytask.models.create(
        "shared_bottom", heads={t.name: 1 for t in data.tasks},
        input_dim=data.train.inputs.shape[1], trunk_dims=(64, 32), head_dims=(16,),
    )  # fmt: skip
    chosen = polytask.balancers.create(balancer, tasks=tasks)
    optimizer = build_optimizer("adam", model, chosen.parameters(), lr=1e-3)
    config = TrainerConfig(epochs=max(epochs, 1), batch_size=128, progress=False)
    trainer = Trainer(model, tasks, chosen, optimizer, config=config)
    if epochs:
        trainer.fit(data.train, data.val)
    losses = trainer.evaluate(data.test)["loss"]
    return statistics.mean(v * scale.get(t, 1.0) ** 2 for t, v in losses.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    budgets = (3, 20) if args.full else (3,)
    rows, table = [], []
    for epochs in budgets:
        for scaled in (False, True):
            targets = "standardised" if scaled else "raw"
            result = {b: mean_test_mse(b, scaled, epochs) for b in BALANCERS}
            result["untrained"] = mean_test_mse("equal", scaled, 0)
            rows.append({"epochs": epochs, "targets": targets, "mean_test_mse": result})
            table.append(
                [epochs, targets, *(f"{result[b]:.1f}" for b in (*BALANCERS, "untrained"))]
            )
            print(epochs, targets, {k: round(v, 1) for k, v in result.items()}, flush=True)
    info = meta("parkinsons_patients.py")
    lines = [
        "# Parkinson's per patient (42 tasks): mean test MSE, UPDRS units",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, 2 threads, seed 0.",
        "",
        *markdown_table(["epochs", "targets", *BALANCERS, "untrained"], table),
    ]
    write_results("parkinsons_patients", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
