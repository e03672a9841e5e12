"""MultiMNIST: twelve balancing methods on the shared-bottom LeNet of Sener & Koltun (2018).

Every method trains the same model (``polytask/configs/multi_mnist.yaml``: LeNet trunk,
50-dimensional features, heads 50-10; Adam lr 1e-3, batch 256, representation level), over
the same seeds; single-task baselines are the same network with one head, trained per task
with the same budget. The epoch with the lowest mean validation loss is tested once.

Differences from the paper's setup (Sener & Koltun 2018, section 6.1 and table 3): our
MultiMNIST is built from MNIST by our own overlay construction (two digits on a 36x36 canvas,
pairings seeded; the local MNIST training images are reconstructed to +-1 grey level), with
10,000 training images held out for validation; the paper trains 100 epochs with SGD and a
grid-searched learning rate, we train 5 epochs (``--full``) with Adam and no search.

    python benchmarks/multi_mnist_balancers.py           # 2 seeds, 1 epoch, 10,000 images
    python benchmarks/multi_mnist_balancers.py --full    # 5 seeds, 5 epochs, 50,000 images
Results: benchmarks/results/multi_mnist_balancers.json and .md
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from common import (
    RESULTS,
    comparison_rows,
    markdown_table,
    meta,
    multi_mnist_config,
    results_dir,
    write_results,
)
from polytask.evaluation import plots
from polytask.evaluation.pareto import pareto_front
from polytask.evaluation.stats import summarize
from polytask.studies.baselines import single_task_baselines
from polytask.studies.compare import compare

BALANCERS = [
    "equal", "uncertainty", "gradnorm", "mgda_ub", "pcgrad", "cagrad", "nash_mtl", "imtl_g",
    "aligned_mtl", "upgrad", "famo", "db_mtl",
]  # fmt: skip
COLUMNS = [("left", "accuracy"), ("right", "accuracy")]
HEADER = [
    "method",
    "left accuracy",
    "right accuracy",
    "delta-m %",
    "mean rank",
    "ms / step",
    "paper left / right %",
]
# Sener & Koltun 2018, table 3: left / right digit accuracy (%).
PAPER = {
    "single-task": "97.23 / 95.90",
    "equal": "96.46 / 94.99 (uniform scaling)",
    "uncertainty": "96.47 / 95.29",
    "gradnorm": "96.27 / 94.84",
    "mgda_ub": "97.26 / 95.90",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (1 thread each)")
    parser.add_argument("--replot", action="store_true", help="redraw the plot from the JSON")
    args = parser.parse_args()
    if args.replot:
        replot()
        return
    seeds, epochs, train_size = (list(range(5)), 5, None) if args.full else ([0, 1], 1, 10_000)
    config = multi_mnist_config(epochs, train_size, BALANCERS[0])
    with tempfile.TemporaryDirectory() as folder:
        comparison, _ = compare(config, BALANCERS, (), seeds, workers=args.workers, output=folder)
    single = single_task_baselines(config, [t for t, _ in COLUMNS], seeds, workers=args.workers)
    single_cells = [summarize([single[s][t][m] for s in seeds]).format(4) for t, m in COLUMNS]
    rows = [["single-task", *single_cells, "0 (reference)", "-", "-", PAPER["single-task"]]]
    rows += [[*row, PAPER.get(row[0], "-")] for row in comparison_rows(comparison, COLUMNS)]
    info = meta(
        "multi_mnist_balancers.py", seeds=seeds, epochs=epochs, train_size=train_size or 50_000
    )
    lines = [
        "# MultiMNIST: balancing methods on the shared-bottom LeNet (Sener & Koltun 2018)",
        "",
        f"`{info['command']}`: {len(seeds)} seeds, {epochs} epoch(s), "
        f"{info['train_size']:,} training images, Adam 1e-3, batch 256, representation level; "
        "test accuracy, mean +- 95% CI over seeds; delta-m (%) against the single-task rows "
        "(lower is better, negative is a gain); mean rank over the two accuracies; ms / step "
        f"includes evaluation and was measured with {args.workers} runs sharing the 2 cores. "
        "The paper's column (table 3, %) trained 100 epochs with SGD on its own MultiMNIST "
        "construction; compare the ordering, not the digits.",
        "",
        *markdown_table(HEADER, rows),
    ]
    payload = {"meta": info, "comparison": comparison.to_dict(), "single_task": single}
    write_results("multi_mnist_balancers", payload, lines + plot_lines(payload, results_dir()))
    print("\n".join(lines))


def plot_lines(payload: dict[str, Any], folder: Path) -> list[str]:
    """Write the plot of each method's mean accuracies (the front of the means joined) and
    return the markdown that shows it; a note instead when matplotlib is missing."""
    methods = [
        plots.MethodPoints(
            m["method"],
            (m["metrics"]["left/accuracy"]["mean"], m["metrics"]["right/accuracy"]["mean"]),
            (
                m["metrics"]["left/accuracy"]["half_width"],
                m["metrics"]["right/accuracy"]["half_width"],
            ),
            [
                (
                    r["test"]["metrics"]["left"]["accuracy"],
                    r["test"]["metrics"]["right"]["accuracy"],
                )
                for r in m["runs"]
            ],
        )
        for m in payload["comparison"]["methods"]
    ]
    try:
        png = plots.pareto_plot(
            methods, pareto_front([list(m.mean) for m in methods], [True, True]),
            xlabel="left accuracy", ylabel="right accuracy",
            title="MultiMNIST: test accuracy per method (mean, 95% CI, seeds faint)",
        )  # fmt: skip
    except plots.MissingPlottingError:
        return ["", f"(no plot: {plots.PLOTS_HINT})"]
    (folder / "multi_mnist_balancers.png").write_bytes(png)
    return ["", "![mean accuracies per method](multi_mnist_balancers.png)"]


def replot() -> None:
    """Redraw the plot from the committed JSON and add it to the markdown (no training)."""
    payload = json.loads((RESULTS / "multi_mnist_balancers.json").read_text())
    page = RESULTS / "multi_mnist_balancers.md"
    lines = [
        line for line in page.read_text().splitlines() if "multi_mnist_balancers.png" not in line
    ]
    while lines and not lines[-1].strip():
        lines.pop()
    write_results("multi_mnist_balancers", payload, lines + plot_lines(payload, RESULTS), RESULTS)


if __name__ == "__main__":
    main()
