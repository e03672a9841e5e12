"""``polytask demo``: MultiMNIST with a LeNet shared bottom, three balancers, one table."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import TYPE_CHECKING

from polytask.cli.table import format_table

if TYPE_CHECKING:
    from polytask.training.experiment import ExperimentConfig

DEFAULT_BALANCERS = "equal,mgda,pcgrad"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``polytask demo``."""
    parser.add_argument(
        "--balancers",
        default=DEFAULT_BALANCERS,
        help=f"comma-separated balancers to compare (default {DEFAULT_BALANCERS})",
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument(
        "--train-size", type=int, default=None, help="training images (default: all 50,000)"
    )
    parser.add_argument("--val-size", type=int, default=10_000, help="validation images")
    parser.add_argument("--test-size", type=int, default=None, help="test images (default all)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--output", default="runs/demo", help="run folder prefix")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data split and training (default 0)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def demo_config(args: argparse.Namespace, balancer: str) -> ExperimentConfig:
    """The packaged MultiMNIST configuration with the demo's settings."""
    from polytask.training.config import load_yaml, merge
    from polytask.training.experiment import ExperimentConfig

    base = load_yaml(resources.files("polytask") / "configs" / "multi_mnist.yaml")  # type: ignore[arg-type]
    options = {"val_size": args.val_size, "seed": args.seed}
    if args.train_size is not None:
        options["train_size"] = args.train_size
    if args.test_size is not None:
        options["test_size"] = args.test_size
    data = merge(
        base,
        {
            "dataset": {"options": options},
            "balancer": {"name": balancer},
            "schedule": {"epochs": args.epochs},
            "device": args.device,
            "seed": args.seed,
            # A rerun with other data or seed gets its own folder; more epochs resume.
            "output": f"{args.output}/{balancer}-{{fingerprint}}",
            "progress": not args.no_progress,
            "log_every": 20,
        },
    )
    return ExperimentConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Train each balancer and print the per-task table of test metrics."""
    # Imported here: the parser (``polytask --help``) must not load torch.
    from polytask.data.files import DataFileError
    from polytask.training.experiment import run_experiment

    balancers = [b.strip() for b in args.balancers.split(",") if b.strip()]
    rows = []
    print(
        f"polytask demo: MultiMNIST (Sener & Koltun 2018), LeNet shared bottom, {args.epochs} "
        f"epoch(s) per balancer; model selected on validation, test evaluated once.",
        flush=True,
    )
    for name in balancers:
        config = demo_config(args, name)
        print(f"\n== {name} ({config.gradients.level} level) ==", flush=True)
        try:
            result = run_experiment(config)
        except DataFileError as error:
            print(f"polytask: error: {error}", file=sys.stderr)
            print(
                "hint: the demo needs the four MNIST files (about 11 MB). With internet, unset "
                "POLYTASK_OFFLINE and they are downloaded once into the cache; without, copy "
                "them into a folder mnist/ and set POLYTASK_DATA to its parent (in a source "
                "checkout, make demo does this when ../shared/data exists)",
                file=sys.stderr,
            )
            return 2
        metrics = result.test["metrics"]
        losses = result.test["loss"]
        rows.append(
            [
                name,
                metrics["left"]["accuracy"],
                metrics["right"]["accuracy"],
                losses["left"],
                losses["right"],
                result.best_epoch,
                f"{result.seconds:.1f}",
            ]
        )
        print(f"done in {result.seconds:.1f}s; run folder {result.output}", flush=True)
        if result.report is not None:
            print(f"report: {result.report}", flush=True)
    print("\nTest split (MultiMNIST test, 10,000 pairs unless --test-size):")
    print(
        format_table(
            [
                "balancer",
                "left acc",
                "right acc",
                "left loss",
                "right loss",
                "best epoch",
                "train s",
            ],
            rows,
        )
    )
    return 0
