"""The architecture zoo on MultiMNIST: parameter count and the result of one epoch.

Every registered architecture (ESMM excepted: its two tasks are the click and conversion of
one funnel, which MultiMNIST's two digits are not) trains for one epoch with equal weighting,
Adam (lr 1e-3), batch 256, on the MultiMNIST construction of Sener & Koltun (2018); the
epoch's model is evaluated once on the test split. Convolutional models read the images
(LeNet trunk of the paper), MLP-based ones the flattened 784 pixels, the transformer the 28
pixel rows as a sequence of 28 tokens.

    python benchmarks/architectures.py            # quick: 10,000 training images
    python benchmarks/architectures.py --full     # all 55,000 (5,000 held out for validation)
Results: benchmarks/results/architectures.json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import torch
from torch import Tensor, nn

import polytask
from common import results_dir
from polytask.training import Trainer, TrainerConfig, build_optimizer
from polytask.training.trainer import parameter_count

HEADS = {"left": 10, "right": 10}


class Flatten(nn.Module):
    """Images ``(B, 1, 28, 28)`` -> pixels ``(B, 784)`` (an input layer without parameters)."""

    output_dim = 784

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)


class Rows(nn.Module):
    """Images ``(B, 1, 28, 28)`` -> a sequence of 28 rows of 28 pixels."""

    output_dim = 28

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], 28, 28)


def zoo() -> dict[str, tuple[str, dict[str, Any]]]:
    """``{row label: (registered name, options)}``."""
    pixels = {"input_layer": Flatten()}
    return {
        "shared_bottom (LeNet)": ("shared_bottom", {"trunk": "lenet", "head_dims": (50,)}),
        "omoe": ("omoe", {**pixels, "num_experts": 4, "expert_dims": (128,)}),
        "mmoe": ("mmoe", {**pixels, "num_experts": 4, "expert_dims": (128,)}),
        "cgc": ("cgc", {**pixels, "task_experts": 2, "shared_experts": 2, "expert_dims": (128,)}),
        "ple (2 levels)": ("ple", {**pixels, "levels": 2, "expert_dims": (128,)}),
        "cross_stitch": ("cross_stitch", {**pixels, "dims": (128, 64)}),
        "sluice": ("sluice", {**pixels, "dims": (64, 64, 64)}),
        "mtan (LeNet)": ("mtan", {"trunk": "lenet", "head_dims": (50,)}),
        "mrn (LeNet)": ("mrn", {"trunk": "lenet", "head_dims": (50,)}),
        "fafs (thin, not grown)": ("fafs", {**pixels, "dims": (128, 64)}),
        "small_towers (LeNet, gamma 0.1)": (
            "small_towers",
            {"model_options": {"trunk": "lenet", "head_dims": (50,)}, "gamma": 0.1},
        ),
        "ufo": ("ufo", {**pixels, "width": 128, "num_blocks": 3}),
        "transformer (rows as tokens)": (
            "transformer",
            {"input_layer": Rows(), "d_model": 64, "num_layers": 2, "pooling": "mean"},
        ),
    }


def run_one(
    label: str, name: str, options: dict[str, Any], data: Any, batch: int
) -> dict[str, Any]:
    """Train one architecture for one epoch; its parameter count, test accuracies, time."""
    torch.manual_seed(0)
    model = polytask.models.create(name, heads=HEADS, **options)
    balancer = polytask.balancers.create("equal")
    optimizer = build_optimizer("adam", model, balancer.parameters(), lr=1e-3)
    config = TrainerConfig(epochs=1, batch_size=batch, progress=False, seed=0)
    tasks = polytask.TaskSet(data.tasks)
    trainer = Trainer(model, tasks, balancer, optimizer, config=config)
    start = time.perf_counter()
    trainer.fit(data.train, data.val)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(data.test)
    deployed = model.inference_model() if hasattr(model, "inference_model") else model
    return {
        "architecture": label,
        "model": name,
        "parameters": parameter_count(model),
        "inference_parameters": parameter_count(deployed),
        "left_accuracy": test["metrics"]["left"]["accuracy"],
        "right_accuracy": test["metrics"]["right"]["accuracy"],
        "train_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="all 55,000 training images")
    parser.add_argument("--only", default="", help="comma-separated registered names to run")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sizes = {} if args.full else {"train_size": 10_000}
    root = os.environ.get("POLYTASK_DATA")
    data = polytask.data.load("multi_mnist", root=root, val_size=5_000, **sizes)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    rows = []
    for label, (name, options) in zoo().items():
        if only and name not in only:
            continue
        row = run_one(label, name, options, data, args.batch_size)
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {
        "command": "python benchmarks/architectures.py" + (" --full" if args.full else ""),
        "train_images": len(data.train),
        "test_images": len(data.test),
        "epochs": 1,
        "balancer": "equal",
        "machine": platform.platform(),
        "processor": platform.processor(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    folder = results_dir()
    (folder / "architectures.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Architecture zoo: one epoch of MultiMNIST, equal weighting",
        "",
        f"`{meta['command']}`: {meta['train_images']} training images, "
        f"{meta['test_images']} test images, Adam lr 1e-3, batch {args.batch_size}, "
        f"{meta['threads']} CPU threads, torch {meta['torch']}. Test accuracy after one epoch.",
        "",
        "| architecture | parameters (training / inference) | left acc. | right acc. | train s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['architecture']} | {r['parameters']:,} / {r['inference_parameters']:,} | "
            f"{r['left_accuracy']:.4f} | {r['right_accuracy']:.4f} | {r['train_seconds']} |"
        )
    lines += ["", "ESMM is not run: its tasks (click, conversion) are one funnel, not two digits."]
    (folder / "architectures.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
