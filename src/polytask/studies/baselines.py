"""Single-task baselines: each task trained alone by the same pipeline, cached."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from polytask.evaluation.baselines import BaselineCache, baseline_spec
from polytask.studies.seeds import run_configs
from polytask.training.config import to_dict
from polytask.training.experiment import ExperimentConfig, NamedConfig

BaselineTable = dict[int, dict[str, dict[str, float]]]  # seed -> task -> metric -> value


def single_task_config(config: ExperimentConfig, task: str, seed: int) -> ExperimentConfig:
    """``task`` alone: the same data, model (one head), optimizer, schedule and seed, equal
    weighting, no run folder. A model-selection monitor that names another task (snips's
    ``slots/span_f1`` for the intent baseline) becomes the task's own validation loss."""
    schedule = config.schedule
    if schedule.monitor != "loss" and schedule.monitor.partition("/")[0] != task:
        schedule = dataclasses.replace(schedule, monitor="loss")
    return dataclasses.replace(
        config,
        schedule=schedule,
        seed=seed,
        only_tasks=[task],
        balancer=NamedConfig("equal"),
        output=None,
        report=False,
        progress=False,
    )


def single_task_baselines(
    config: ExperimentConfig,
    tasks: Sequence[str],
    seeds: Sequence[int],
    cache: BaselineCache | None = None,
    workers: int = 1,
    say: Callable[[str], None] = print,
) -> BaselineTable:
    """Test metrics of every task trained alone, per seed; trained only when not cached
    under the exact key (data, model, budget, seed), then cached."""
    cache = cache or BaselineCache(config.baselines_dir)
    table: BaselineTable = {s: {} for s in seeds}
    missing = []
    for seed in seeds:
        plain = to_dict(dataclasses.replace(config, seed=seed))
        for task in tasks:
            found = cache.get(baseline_spec(plain, task))
            if found is None:
                missing.append((seed, task))
            else:
                table[seed][task] = found
    if missing:
        say(f"training {len(missing)} single-task baseline run(s) ({cache.folder})")
        configs = [single_task_config(config, task, seed) for seed, task in missing]
        for (seed, task), run in zip(missing, run_configs(configs, workers, say=say), strict=True):
            metrics = run.test["metrics"][task]
            plain = to_dict(dataclasses.replace(config, seed=seed))
            cache.put(baseline_spec(plain, task), metrics, seconds=run.seconds, steps=run.steps)
            table[seed][task] = metrics
    return table


def mean_baselines(table: BaselineTable) -> dict[str, dict[str, float]]:
    """The mean over seeds of each task's baseline metrics."""
    seeds = list(table)
    first = table[seeds[0]]
    return {
        task: {m: sum(table[s][task][m] for s in seeds) / len(seeds) for m in metrics}
        for task, metrics in first.items()
    }
