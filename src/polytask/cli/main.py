"""The ``polytask`` command: ``demo``, ``train CONFIG [key=value ...]``, ``list WHAT``."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from polytask.cli import demo
from polytask.cli.table import format_table
from polytask.evaluation.plots import PLOTS_HINT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (built on demand, never global state)."""
    parser = argparse.ArgumentParser(
        prog="polytask", description="Multi-task learning for PyTorch."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(commands.add_parser("demo", help="train on MultiMNIST and print a table"))
    train = commands.add_parser("train", help="train from a YAML configuration")
    train.add_argument(
        "config",
        help="YAML file, or the name of a packaged configuration "
        f"({', '.join(packaged_configs())})",
    )
    train.add_argument("overrides", nargs="*", help="key=value overrides, e.g. balancer.name=mgda")
    listing = commands.add_parser("list", help="list balancers, models or datasets")
    listing.add_argument("what", choices=["balancers", "models", "datasets", "configs"])
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def packaged_configs() -> list[str]:
    """Names of the configurations shipped in ``polytask/configs``."""
    folder = resources.files("polytask") / "configs"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def config_path(name: str) -> Path:
    """A path as given, or the packaged configuration called ``name``."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    if name in packaged_configs():
        return Path(str(resources.files("polytask") / "configs" / f"{name}.yaml"))
    from polytask._registry import unknown_name_message

    raise FileNotFoundError(unknown_name_message("configuration", name, packaged_configs()))


def _options(options: dict[str, object]) -> str:
    parts = []
    for key, default in options.items():
        if key in ("heads",):
            parts.append(key)
        elif default is inspect.Parameter.empty:
            parts.append(f"{key} (required)")
        else:
            parts.append(f"{key}={default!r}")
    return ", ".join(parts)


def list_command(what: str, as_json: bool) -> int:
    """Print a registry."""
    import polytask.balancers
    import polytask.data
    import polytask.models

    if what == "configs":
        rows: list[list[object]] = [[name] for name in packaged_configs()]
        print(format_table(["config"], rows))
        return 0
    if what == "balancers":
        described = polytask.balancers.describe()
        header = ["name", "needs", "levels", "roles", "summary", "options"]
        rows = [
            [
                r["name"],
                r["needs"],
                r["levels"],
                "yes" if r["roles"] else "no",
                r["summary"],
                _options(r["options"]),
            ]
            for r in described
        ]
    else:
        module = polytask.models if what == "models" else polytask.data
        described = module.describe()
        key = "title" if what == "models" else "summary"
        header = ["name", "model" if what == "models" else "summary", "options"]
        rows = [[r["name"], r[key], _options(r["options"])] for r in described]
    if as_json:
        print(
            json.dumps(
                [
                    {**r, "options": {k: repr(v) for k, v in r["options"].items()}}
                    for r in described
                ],
                indent=2,
            )
        )
    else:
        print(format_table(header, rows))
    return 0


def train_command(config: str, overrides: Sequence[str]) -> int:
    """Train one configuration and print its test metrics."""
    from polytask.training.experiment import ExperimentConfig, run_experiment

    experiment = ExperimentConfig.from_yaml(config_path(config), list(overrides))
    result = run_experiment(experiment)
    rows = [
        [task, metric, value, result.test["loss"][task]]
        for task, per in result.test["metrics"].items()
        for metric, value in (per.items() or [("-", float("nan"))])
    ]
    print(format_table(["task", "metric", "test value", "test loss"], rows))
    print(
        f"best epoch {result.best_epoch} (on validation); {result.steps} steps in "
        f"{result.seconds:.1f}s; run folder: {result.output}"
    )
    if result.report is not None:
        print(f"report: {result.report}")
    if result.missing_plots:
        print(f"note: the report has no plots; {PLOTS_HINT}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polytask`` command; returns the exit status."""
    from polytask.training.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return demo.run(args)
        if args.command == "train":
            return train_command(args.config, args.overrides)
        return list_command(args.what, args.json)
    except (ConfigError, KeyError, FileNotFoundError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"polytask: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
