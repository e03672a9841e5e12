"""Self-auxiliary small towers (Wang et al., WWW 2022; reference text 04), gamma swept.

The same models with and without a linear small tower per task on the shared representation
(loss ``L_t + gamma L_t^a``; the towers are dropped at inference): on census-income,
shared-bottom and MMoE (default sizes, embedded inputs, 60/20/20 split of the official test
file, which is the only local file); on MultiMNIST, the shared-bottom LeNet. Equal
weighting, Adam 1e-3, batch 256; the epoch with the lowest mean validation loss is tested.
``gamma = 0`` is the plain model (no towers).

    python benchmarks/small_towers.py           # 2 seeds, short runs
    python benchmarks/small_towers.py --full    # 5 seeds
Results: benchmarks/results/small_towers.json and .md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from typing import Any

import polytask
from common import markdown_table, meta, multi_mnist_config, quiet_config, write_results
from polytask.evaluation.stats import summarize
from polytask.models import FeatureSchema
from polytask.studies.seeds import run_configs, with_seed
from polytask.training.experiment import ExperimentConfig, NamedConfig

GAMMAS = (0.0, 0.1, 0.3, 1.0)
HEADERS = {
    "census-income": ["income AUC", "never-married AUC"],
    "MultiMNIST": ["left accuracy", "right accuracy"],
}


def census_config(epochs: int) -> ExperimentConfig:
    """Census-income, both tasks, embedded inputs (the model is set per row)."""
    return quiet_config("census_income", {"encoding": "embedding"}, epochs=epochs)


def wrapped(model: NamedConfig, gamma: float, feature_dim: int | None) -> NamedConfig:
    """``model`` itself for gamma 0, else wrapped in small towers of weight ``gamma``."""
    if gamma == 0:
        return model
    options: dict[str, Any] = {
        "model": model.name, "model_options": dict(model.options), "gamma": gamma,
    }  # fmt: skip
    if feature_dim is not None:
        options["feature_dim"] = feature_dim
    return NamedConfig("small_towers", options)


def census_mmoe_feature_dim() -> int:
    """MMoE's shared features on census-income: 8 experts x 64 plus the embedded input its
    gates read (a trained tensor, so part of the features)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = polytask.data.load("census_income", encoding="embedding")
    schema = FeatureSchema.from_config(data.metadata["feature_schema"])
    return 8 * 64 + schema.output_dim()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (1 thread each)")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore:census_income")
    if args.full:
        seeds, census_epochs, mnist_epochs, train_size = list(range(5)), 5, 3, None
    else:
        seeds, census_epochs, mnist_epochs, train_size = [0, 1], 2, 1, 10_000
    studies = [
        ("census-income", "shared_bottom", census_config(census_epochs), None,
         [("income", "auc"), ("never_married", "auc")]),
        ("census-income", "mmoe", census_config(census_epochs), census_mmoe_feature_dim(),
         [("income", "auc"), ("never_married", "auc")]),
        ("MultiMNIST", "shared_bottom (LeNet)", multi_mnist_config(mnist_epochs, train_size), None,
         [("left", "accuracy"), ("right", "accuracy")]),
    ]  # fmt: skip
    plan, configs = [], []
    for data_name, label, config, feature_dim, columns in studies:
        model = config.model if data_name == "MultiMNIST" else NamedConfig(label)
        for gamma in GAMMAS:
            base = dataclasses.replace(config, model=wrapped(model, gamma, feature_dim))
            plan.append((data_name, label, gamma, columns))
            configs += [with_seed(base, s) for s in seeds]
    runs = run_configs(configs, args.workers)
    rows, record = {}, []
    for i, (data_name, label, gamma, columns) in enumerate(plan):
        mine = runs[i * len(seeds) : (i + 1) * len(seeds)]
        cells = [summarize([r.test["metrics"][t][m] for r in mine]).format(4) for t, m in columns]
        rows.setdefault(data_name, []).append([label, f"{gamma:g}", *cells])
        record.append(
            {"data": data_name, "model": label, "gamma": gamma,
             "runs": [dataclasses.asdict(r) for r in mine]}
        )  # fmt: skip
    info = meta("small_towers.py", seeds=seeds, census_epochs=census_epochs,
                mnist_epochs=mnist_epochs, mnist_train_size=train_size or 50_000)  # fmt: skip
    lines = [
        "# Self-auxiliary small towers (Wang et al. 2022), gamma swept",
        "",
        f"`{info['command']}`: {len(seeds)} seeds; test metrics of the model without its "
        "towers, mean +- 95% CI over seeds; gamma 0 is the plain model. Census-income: "
        f"{census_epochs} epochs on a 60/20/20 split of the official test file (the only local "
        f"file). MultiMNIST: {mnist_epochs} epoch(s), {info['mnist_train_size']:,} images.",
        "",
        "## Census-income",
        "",
        *markdown_table(["model", "gamma", *HEADERS["census-income"]], rows["census-income"]),
        "",
        "## MultiMNIST",
        "",
        *markdown_table(["model", "gamma", *HEADERS["MultiMNIST"]], rows["MultiMNIST"]),
    ]
    write_results("small_towers", {"meta": info, "runs": record}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
