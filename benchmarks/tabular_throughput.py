"""Training throughput of MMoE on census-income through the library's own trainer and data path.

Protocol (issue 7, item 7): census-income with about 80,000 training rows (the local copy
holds the official test file only, split 80/10/10, 79,810 training rows), 32 categorical
features embedded in 8 dimensions and 7 standardised continuous ones (the ``embedding``
encoding and its feature schema), MMoE with 8 experts of one 64-unit layer and towers of 32,
equal weighting, Adam (lr 1e-3), 2 threads. One epoch is timed from the first batch to the
last optimizer step (batches come from the library's :class:`~polytask.data.IndexBatcher`,
so data loading is included; parsing the CSV once is reported separately); each repeat is a
fresh model in a fresh process, and the validation AUC after that one epoch is recorded.

    python benchmarks/tabular_throughput.py           # 3 repeats per batch size
    python benchmarks/tabular_throughput.py --full    # 7 repeats
Results: benchmarks/results/tabular_throughput.json and .md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from argparse import SUPPRESS

import torch

from common import markdown_table, meta, quiet_config, write_results
from polytask.training.experiment import ExperimentConfig, prepare
from polytask.training.trainer import parameter_count

BATCH_SIZES = (256, 2048)
HEADER = [
    "implementation",
    "samples/s, batch 256",
    "samples/s, batch 2048",
    "val AUC income after 1 epoch (256 / 2048)",
]
TARGETS = {256: 45_000, 2048: 70_000}
# Issue 7's measurements on this 2-core machine, samples/s at batch 256 / 2048.
OTHERS = {
    "torch-rechub MMoE": (15_900, 27_400),
    "DeepCTR-Torch MMoE": (27_900, 46_800),
    "hand-fused in-memory PyTorch loop": (60_000, 82_000),
}


def config(batch_size: int, seed: int) -> ExperimentConfig:
    """The protocol's run: one epoch, no run folder, no progress bar."""
    return quiet_config(
        "census_income",
        {"encoding": "embedding", "embed_dim": 8, "fractions": [0.8, 0.1, 0.1]},
        epochs=1, batch_size=batch_size, seed=seed, balancer={"name": "equal"},
        model={"name": "mmoe",
               "options": {"num_experts": 8, "expert_dims": [64], "tower_dims": [32]}},
    )  # fmt: skip


def data_source(train: object, batch_size: int, source: str) -> object:
    """The training data as the trainer gets it: the dataset itself (its index batcher), a
    ``DataLoader`` over batches gathered in one indexing operation (``batch_size=None`` with
    a batch sampler), or a plain ``DataLoader`` (rows collated one by one)."""
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    if source == "batcher":
        return train
    if source == "dataloader":
        sampler = BatchSampler(RandomSampler(train), batch_size, drop_last=False)  # type: ignore[arg-type]
        return DataLoader(train, batch_size=None, sampler=sampler)  # type: ignore[arg-type]
    return DataLoader(train, batch_size=batch_size, shuffle=True)  # type: ignore[arg-type]


def one_epoch(batch_size: int, seed: int, source: str = "batcher") -> dict[str, float]:
    """Train one epoch of a fresh model; samples per second and validation AUC."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the split warning of the local copy, said once below
        started = time.perf_counter()
        prepared = prepare(config(batch_size, seed), write=False)
        loaded = time.perf_counter() - started
    trainer, data = prepared.trainer, prepared.data
    started = time.perf_counter()
    trainer.fit(data_source(data.train, batch_size, source), None)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    val = trainer.evaluate(data.val)["metrics"]
    return {
        "samples_per_second": len(data.train) / seconds,
        "epoch_seconds": seconds,
        "load_seconds": loaded,
        "rows": len(data.train),
        "parameters": parameter_count(prepared.model),
        **{f"val_auc_{t}": m["auc"] for t, m in val.items()},
    }


def hand_fused_epoch(batch_size: int, seed: int) -> dict[str, float]:
    """The reference: the same MMoE written as one flat PyTorch loop over in-memory tensors
    (categorical codes stacked into one tensor, one embedding lookup, experts as one matmul,
    fused Adam, batches sliced from a permuted copy), no library code in the loop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare(config(batch_size, seed), write=False).data
    inputs, targets = data.train.inputs, data.train.targets
    assert isinstance(inputs, dict)
    schema = data.metadata["feature_schema"]
    names = [f["name"] for f in schema["sparse"]]
    sizes = torch.tensor([f["vocab_size"] for f in schema["sparse"]])
    offsets = torch.cumsum(sizes, 0) - sizes
    codes = torch.stack([inputs[n] for n in names], dim=1) + offsets
    dense, tasks = inputs["dense"], list(targets)
    labels = torch.stack([targets[t] for t in tasks], dim=1)
    torch.manual_seed(seed)
    width = 8 * len(names) + dense.shape[1]
    table = torch.nn.Parameter(torch.randn(int(sizes.sum()), 8) * 0.01)
    experts = torch.nn.Linear(width, 8 * 64)
    gates = torch.nn.Linear(width, 8 * len(tasks))
    towers = [torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
              for _ in tasks]  # fmt: skip
    params = [table, *experts.parameters(), *gates.parameters()]
    params += [p for tower in towers for p in tower.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
    started = time.perf_counter()
    order = torch.randperm(len(labels))
    codes, dense, labels = codes[order], dense[order], labels[order]
    for start in range(0, len(labels), batch_size):
        c, d, y = (t[start : start + batch_size] for t in (codes, dense, labels))
        x = torch.cat([table.index_select(0, c.reshape(-1)).view(len(c), -1), d], dim=1)
        h = torch.relu(experts(x)).view(len(c), 8, 64)
        g = torch.softmax(gates(x).view(len(c), len(tasks), 8), dim=-1)
        mixed = torch.bmm(g, h)  # (B, tasks, 64)
        logits = torch.cat([tower(mixed[:, i]) for i, tower in enumerate(towers)], dim=1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    return {"samples_per_second": len(labels) / seconds, "epoch_seconds": seconds}


def fresh_process(batch_size: int, seed: int, kind: str = "polytask") -> dict[str, float]:
    """:func:`one_epoch` (``kind`` ``polytask``, ``dataloader`` or ``dataloader_rows``: the
    data source) or, ``kind="hand-fused"``, :func:`hand_fused_epoch`, in a new interpreter
    (repeats in one process slowed down run after run, so each starts clean)."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, str(batch_size), str(seed)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "BATCH", "SEED"), help=SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.one:
        kind, batch, seed = args.one[0], int(args.one[1]), int(args.one[2])
        if kind == "hand-fused":
            print(json.dumps(hand_fused_epoch(batch, seed)))
        else:
            source = {"polytask": "batcher"}.get(kind, kind)
            print(json.dumps(one_epoch(batch, seed, source)))
        return
    repeats = 7 if args.full else 3
    rows = []
    for batch_size in BATCH_SIZES:
        # Ours and the hand-fused reference alternate, so both see the machine as it is.
        runs, reference, loaders, row_loaders = [], [], [], []
        for seed in range(repeats):
            runs.append(fresh_process(batch_size, seed))
            reference.append(fresh_process(batch_size, seed, "hand-fused"))
            loaders.append(fresh_process(batch_size, seed, "dataloader"))
            row_loaders.append(fresh_process(batch_size, seed, "dataloader_rows"))
        speed = statistics.median(r["samples_per_second"] for r in runs)
        fused = statistics.median(r["samples_per_second"] for r in reference)
        row = {
            "batch_size": batch_size,
            "samples_per_second": speed,
            "all_samples_per_second": [r["samples_per_second"] for r in runs],
            "hand_fused_samples_per_second": fused,
            "all_hand_fused": [r["samples_per_second"] for r in reference],
            "dataloader_samples_per_second": statistics.median(
                r["samples_per_second"] for r in loaders
            ),
            "dataloader_rows_samples_per_second": statistics.median(
                r["samples_per_second"] for r in row_loaders
            ),
            "target": TARGETS[batch_size],
            "meets_target": speed >= TARGETS[batch_size],
            "ratio_to_hand_fused": speed / fused,
            "val_auc_income": statistics.mean(r["val_auc_income"] for r in runs),
            "val_auc_never_married": statistics.mean(r["val_auc_never_married"] for r in runs),
            "load_seconds": statistics.median(r["load_seconds"] for r in runs),
            "rows": runs[0]["rows"],
            "parameters": runs[0]["parameters"],
        }
        rows.append(row)
        print(
            f"batch {batch_size}: {speed:,.0f} samples/s (target {TARGETS[batch_size]:,}), "
            f"val AUC income {row['val_auc_income']:.4f} never_married "
            f"{row['val_auc_never_married']:.4f}",
            flush=True,
        )
    info = meta("tabular_throughput.py", repeats=repeats)
    table = [
        [
            "polytask (this run)",
            *(f"{r['samples_per_second']:,.0f}" for r in rows),
            " / ".join(f"{r['val_auc_income']:.4f}" for r in rows),
        ],
        [
            "polytask trainer on a torch DataLoader, batches gathered by index "
            "(batch_size=None, BatchSampler; this run)",
            *(f"{r['dataloader_samples_per_second']:,.0f}" for r in rows),
            "-",
        ],
        [
            "polytask trainer on a plain torch DataLoader (rows collated one by one; this run)",
            *(f"{r['dataloader_rows_samples_per_second']:,.0f}" for r in rows),
            "-",
        ],
        [
            "hand-fused in-memory loop (this run, same machine state)",
            *(f"{r['hand_fused_samples_per_second']:,.0f}" for r in rows),
            "-",
        ],
    ] + [[f"{name} (issue 7)", f"{a:,}", f"{b:,}", "-"] for name, (a, b) in OTHERS.items()]
    verdict = ", ".join(
        f"batch {r['batch_size']}: {r['samples_per_second']:,.0f} "
        f"({'met' if r['meets_target'] else 'not met'}; "
        f"{r['ratio_to_hand_fused']:.2f} of the hand-fused loop timed beside it)"
        for r in rows
    )
    lines = [
        "# Tabular throughput: MMoE on census-income, one epoch through the trainer",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, 2 threads; "
        f"{rows[0]['rows']:,} training rows, {rows[0]['parameters']:,} parameters, median of "
        f"{repeats} runs, each in a fresh process, alternating with a hand-fused reference loop "
        "(the same MMoE as one flat PyTorch loop over in-memory tensors). Data loading by the "
        "library's batcher is inside the timing; parsing the CSV file once takes "
        f"{rows[0]['load_seconds']:.1f} s and is not.",
        "",
        *markdown_table(HEADER, table),
        "",
        f"Targets: {TARGETS[256]:,} and {TARGETS[2048]:,} samples/s: {verdict}. The "
        "hand-fused loop here (one gate matmul for both tasks, one loss over stacked logits) "
        "is leaner than the one the issue measured (its row), so the ratio to it is a stricter "
        "check than the targets; the gap is the library's per-step work in Python (per-task "
        "losses with masks and NaN checks, outputs and logging state). This shared machine's "
        "speed drifts by up to a third over hours; both loops were timed alternately. The "
        "torch-rechub and DeepCTR-Torch rows are the issue's measurements on this machine (not "
        "re-run here). One epoch at batch 2048 is only 39 optimizer steps, hence its lower AUC.",
    ]
    write_results("tabular_throughput", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
