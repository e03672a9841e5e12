"""What every benchmark script shares: the machine record and writing results.

Each script writes ``<name>.json`` (raw numbers and ``meta``: command, machine, versions) and
``<name>.md`` (the table a reader sees, with the command on top): a ``--full`` run into
``benchmarks/results/`` (committed), a quick run into ``benchmarks/results/quick/`` (ignored by
git), so that ``make bench`` never overwrites the committed full results.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def results_dir() -> Path:
    """``results/`` for a ``--full`` run, ``results/quick/`` otherwise (created)."""
    folder = RESULTS if "--full" in sys.argv else RESULTS / "quick"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def meta(script: str, **settings: Any) -> dict[str, Any]:
    """The command that produced a result, the machine and the versions, plus ``settings``."""
    import torch

    return {
        "command": " ".join(["python", f"benchmarks/{script}", *sys.argv[1:]]),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **settings,
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def missed_line(missed: Sequence[dict[str, Any]], total: int) -> str:
    """``Rows over their target: k of n: name (level, T=..), ...`` for a step-cost table."""
    names = ", ".join(f"{r['balancer']} ({r['level']}, T={r['T']})" for r in missed)
    return f"Rows over their target: {len(missed)} of {total}" + (f": {names}" if names else "")


def write_results(
    name: str, payload: dict[str, Any], lines: Sequence[str], folder: Path | None = None
) -> Path:
    """Write ``<name>.json`` (``payload``) and ``<name>.md`` (``lines``) into ``folder``
    (default :func:`results_dir`); returns the .md."""
    folder = folder or results_dir()
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    page = folder / f"{name}.md"
    page.write_text("\n".join(lines) + "\n")
    return page


def comparison_rows(comparison: Any, columns: Sequence[tuple[str, str]], digits: int = 4) -> list:
    """One table row per method of a :class:`polytask.studies.compare.Comparison`:
    label, ``mean +- CI`` of each ``(task, metric)`` column, delta-m (%), mean rank, ms/step."""
    ranks = comparison.ranks()
    rows = []
    for result in comparison.results:
        cells = [result.metric(task, metric).format(digits) for task, metric in columns]
        rows.append([result.label, *cells, *comparison.headline(result, ranks)])
    return rows


def quiet_config(
    dataset: str, options: dict[str, Any], *, epochs: int, batch_size: int = 256, **sections: Any
) -> Any:
    """A benchmark run's :class:`~polytask.training.experiment.ExperimentConfig`: ``dataset``
    with ``options``, Adam (lr 1e-3), selection on the mean validation loss, no run folder,
    progress bar, report or logging; ``sections`` add or replace top-level keys (``model``,
    ``balancer``, ``tasks``, ``seed``)."""
    from polytask.training.experiment import ExperimentConfig

    return ExperimentConfig.from_dict(
        {
            "dataset": {"name": dataset, "options": options},
            "optimizer": {"name": "adam", "lr": 1e-3},
            "schedule": {"epochs": epochs, "batch_size": batch_size, "monitor": "loss"},
            "progress": False,
            "report": False,
            "log_every": 10**9,
            **sections,
        }
    )


def multi_mnist_config(epochs: int, train_size: int | None, balancer: str = "equal") -> Any:
    """The packaged MultiMNIST configuration (LeNet shared bottom, Adam 1e-3, batch 256) with
    this budget and ``balancer``, on the CPU, without run folder, progress bar or report."""
    import dataclasses
    from importlib import resources

    from polytask.training.experiment import ExperimentConfig, NamedConfig

    config = ExperimentConfig.from_yaml(
        str(resources.files("polytask") / "configs" / "multi_mnist.yaml")
    )
    options = dict(config.dataset.options)
    if train_size is not None:
        options["train_size"] = train_size
    return dataclasses.replace(
        config,
        dataset=NamedConfig(config.dataset.name, options),
        balancer=NamedConfig(balancer),
        schedule=dataclasses.replace(config.schedule, epochs=epochs),
        output=None, progress=False, report=False, device="cpu", log_every=10**9,
    )  # fmt: skip
