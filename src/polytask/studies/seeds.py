"""Repeating a configuration over seeds, in this process or in parallel processes."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from polytask.training.experiment import ExperimentConfig, run_experiment


@dataclass
class SeedRun:
    """One seed's outcome: test metrics and losses, time, steps and run folder."""

    seed: int
    test: dict[str, Any]
    seconds: float
    steps: int
    output: str | None

    @property
    def step_ms(self) -> float:
        """Mean wall time per training step (evaluation included), in milliseconds."""
        return 1000.0 * self.seconds / max(self.steps, 1)


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    """``config`` with ``seed``; its run folder gets a ``seed<N>`` part unless the output
    template already names ``{seed}``."""
    output = config.output
    if output is not None and "{seed}" not in output:
        output = f"{output}/seed{{seed}}"
    return dataclasses.replace(config, seed=seed, output=output)


def _run(config: ExperimentConfig, threads: int | None) -> SeedRun:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    result = run_experiment(config)
    return SeedRun(config.seed, result.test, result.seconds, result.steps, result.output)


Runner = Callable[[ExperimentConfig], SeedRun]


def run_configs(
    configs: Sequence[ExperimentConfig],
    workers: int = 1,
    say: Callable[[str], None] | None = None,
    runner: Runner | None = None,
) -> list[SeedRun]:
    """Run each configuration (in order, or in ``workers`` spawned processes sharing the
    CPU cores), returning results in the input order. ``say`` hears one line as each run
    ends (also from worker processes): ``[3/12] mgda seed 1: 14.2 s, about 2 min left``.
    ``runner`` trains one configuration another way (``polytask compare --nproc``: each
    run on several processes), one run after another."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if runner is not None and workers > 1:
        raise ValueError("each run already uses several processes: give --workers 1 with --nproc")
    started = time.perf_counter()
    results: dict[int, SeedRun] = {}

    def finished(index: int, run: SeedRun) -> None:
        results[index] = run
        if say is None:
            return
        done, total = len(results), len(configs)
        config = configs[index]
        left = (time.perf_counter() - started) / done * (total - done)
        eta = f", about {_duration(left)} left" if done < total else ""
        say(f"[{done}/{total}] {config.model.name} / {config.balancer.name} seed "
            f"{config.seed}: {run.seconds:.1f} s{eta}")  # fmt: skip

    if runner is not None:
        for i, c in enumerate(configs):
            finished(i, runner(c))
    elif workers == 1 or len(configs) == 1:
        for i, c in enumerate(configs):
            finished(i, _run(c, None))
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run, c, threads): i for i, c in enumerate(configs)}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    return [results[i] for i in range(len(configs))]


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def run_seeds(
    config: ExperimentConfig,
    seeds: Sequence[int],
    workers: int = 1,
    say: Callable[[str], None] | None = None,
) -> list[SeedRun]:
    """Train ``config`` once per seed (see :func:`run_configs`)."""
    if not seeds:
        raise ValueError("give at least one seed")
    return run_configs([with_seed(config, s) for s in seeds], workers, say=say)
