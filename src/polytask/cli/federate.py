"""``polytask federate CONFIG [key=value ...]`` and ``polytask list federated``."""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Sequence
from typing import Any

from polytask.cli.table import format_table


def add_arguments(parser: argparse.ArgumentParser, configs: Sequence[str]) -> None:
    """The command's arguments."""
    parser.add_argument(
        "config",
        help=f"YAML file, or the name of a packaged federated configuration ({', '.join(configs)})",
    )
    parser.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. algorithm.name=ditto rounds=50"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="remove the run in the output folder and start over (by default a run folder "
        "that holds a checkpoint is resumed, and refused if its settings differ)",
    )


def run(config_file: str, overrides: Sequence[str], restart: bool) -> int:
    """Run the configured federated experiment and print the clients' test losses."""
    from polytask.federated.experiment import FederatedConfig
    from polytask.federated.report import client_distribution
    from polytask.federated.run import run_federated

    settings = FederatedConfig.from_yaml(config_file, list(overrides))
    outcome = run_federated(settings, restart, say=lambda m: print(f"polytask: {m}", flush=True))
    rows = []
    for split, scores in outcome.scores.items():
        for task in scores.losses[0]:
            d = client_distribution(scores, task)
            rows.append([split, task, d["weighted_mean"], d["mean"], d["median"],
                         d["bottom_decile"], d["max"]])  # fmt: skip
    print(format_table(["split", "task", "weighted mean", "mean", "median", "bottom decile",
                        "worst"], rows))  # fmt: skip
    ran = f"{outcome.rounds_run} round(s) in {outcome.seconds:.1f}s"
    print(f"loss per client over {len(outcome.names)} clients; {ran}; run folder: "
          f"{outcome.output} (report.html)")  # fmt: skip
    return 0


def list_algorithms(as_json: bool, configs: Sequence[str]) -> int:
    """Print the federated algorithms (``algorithm.name`` values) and their options."""
    from polytask.federated.registry import ALGORITHMS

    described: list[dict[str, Any]] = []
    for name, cls in ALGORITHMS.items():
        options = {
            p.name: p.default for p in inspect.signature(cls).parameters.values()
        }  # fmt: skip
        summary = (cls.__doc__ or "").strip().split("\n")[0]
        described.append({"name": name, "summary": summary, "options": options})
    if as_json:
        print(json.dumps(described, indent=2, default=repr))
        return 0
    rows = [[d["name"], ", ".join(f"{k}={v!r}" for k, v in d["options"].items()) or "-"]
            for d in described]  # fmt: skip
    print(format_table(["name", "options"], rows))
    print(f"\nconfigurations for polytask federate: {', '.join(configs)}")
    return 0
