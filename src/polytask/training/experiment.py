"""An experiment from configuration: data set, tasks, model, balancer, optimizer, schedule.

This is what ``polytask train CONFIG key=value ...`` runs; it is also a Python API::

    from polytask.training.experiment import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig.from_yaml("config.yaml", ["balancer.name=mgda"]))
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from polytask import balancers as balancer_registry
from polytask import data as data_registry
from polytask.balancers.base import Balancer
from polytask.data.splits import DataSplits
from polytask.evaluation.baselines import BaselineCache, baseline_spec
from polytask.evaluation.reports import run_report
from polytask.models.base import MultiTaskModel
from polytask.tasks.task import Task
from polytask.tasks.taskset import TaskSet
from polytask.training.config import (
    to_dict,
)
from polytask.training.experiment_build import (
    apply_task_overrides,
    build_model,
    head_sizes,
    make_batcher,
    model_options,
    select_tasks,
)
from polytask.training.experiment_config import (
    DEFAULT_OUTPUT,
    MAY_CHANGE,
    TRAINER_KEYS,
    ExperimentConfig,
    GradientConfig,
    NamedConfig,
    OptimizerConfig,
    SamplerConfig,
    ScheduleConfig,
    TaskOverride,
    trainer_config,
)
from polytask.training.optim import build_optimizer, build_scheduler
from polytask.training.run_folder import RunFolder, clear_run
from polytask.training.sizing import sized_schedule
from polytask.training.trainer import Trainer, parameter_count

__all__ = [
    "DEFAULT_OUTPUT",
    "MAY_CHANGE",
    "TRAINER_KEYS",
    "ExperimentConfig",
    "ExperimentResult",
    "GradientConfig",
    "NamedConfig",
    "OptimizerConfig",
    "Prepared",
    "SamplerConfig",
    "ScheduleConfig",
    "TaskOverride",
    "apply_task_overrides",
    "build_model",
    "cached_baselines",
    "head_sizes",
    "make_batcher",
    "model_options",
    "prepare",
    "run_experiment",
    "select_tasks",
    "trainer_config",
]


@dataclass
class ExperimentResult:
    """Outcome of :func:`run_experiment`: test metrics of the selected model and provenance."""

    test: dict[str, Any]
    val: dict[str, Any] | None
    best_epoch: int
    steps: int
    seconds: float
    parameters: int
    output: str | None
    report: Path | None = None
    missing_plots: bool = False
    scaled_tasks: list[str] = dataclasses.field(default_factory=list)
    """Tasks that learn a standardised target (``Task.target_scale``): their loss is in
    standard units, their metrics in the target's own units."""


@dataclass
class Prepared:
    """The pieces of one run, built from its configuration and ready to train."""

    config: ExperimentConfig
    data: DataSplits
    tasks: list[Task]
    model: MultiTaskModel
    trainer: Trainer
    output: Path | None
    schedule_note: str = ""
    """What :func:`~polytask.training.sizing.sized_schedule` chose (``""``: nothing)."""


def prepare(
    config: ExperimentConfig,
    wrap_balancer: Callable[[Balancer], Balancer] | None = None,
    write: bool = True,
) -> Prepared:
    """Load the data and build tasks, model, balancer, optimizer, schedule and trainer.

    ``wrap_balancer`` may wrap the configured balancer (the diagnosis records through it);
    ``write=False`` leaves the run folder alone (no config copy, no log). An epoch count or
    batch size the configuration leaves out is sized by the training rows
    (:func:`~polytask.training.sizing.sized_schedule`); the returned ``config`` holds the
    values chosen.
    """
    torch.manual_seed(config.seed)
    loaded = data_registry.load(config.dataset.name, **config.dataset.options)
    assert isinstance(loaded, DataSplits)
    given = config.schedule
    sized = sized_schedule(len(loaded.train), given.epochs, given.batch_size, given.max_steps)
    config = dataclasses.replace(
        config,
        schedule=dataclasses.replace(given, epochs=sized.epochs, batch_size=sized.batch_size),
    )
    data_tasks = [t.name for t in loaded.tasks]
    tasks = select_tasks(apply_task_overrides(loaded.tasks, config.tasks), config.only_tasks)
    if config.only_tasks is not None:
        names = [t.name for t in tasks]
        loaded = dataclasses.replace(
            loaded,
            train=loaded.train.select_tasks(names),
            val=loaded.val.select_tasks(names),
            test=loaded.test.select_tasks(names),
            tasks=tasks,
        )
    model = build_model(config.model, loaded, tasks, data_tasks)
    # Bound to the tasks at once: learnt per-task parameters exist before the optimizer.
    balancer = balancer_registry.create(
        config.balancer.name, tasks=tasks, **config.balancer.options
    )
    if wrap_balancer is not None:
        balancer = wrap_balancer(balancer)
    optimizer = build_optimizer(
        config.optimizer.name,
        model,
        balancer.parameters(),
        config.optimizer.lr,
        config.optimizer.weight_decay,
    )
    schedule = config.schedule
    assert schedule.epochs is not None and schedule.batch_size is not None
    steps_per_epoch = -(-len(loaded.train) // schedule.batch_size)
    total = schedule.max_steps or schedule.epochs * steps_per_epoch
    scheduler = build_scheduler(schedule.scheduler, optimizer, total)
    out = config.output_dir() if write else None
    trainer = Trainer(
        model,
        TaskSet(tasks),
        balancer,
        optimizer,
        scheduler,
        trainer_config(config, str(out) if out else None),
        run_settings=config.run_settings(),
    )
    return Prepared(config, loaded, tasks, model, trainer, out, sized.note)


def cached_baselines(
    config: ExperimentConfig, tasks: list[Task]
) -> dict[str, dict[str, float]] | None:
    """The cached single-task baselines of every task of ``config`` (same data, model,
    budget and seed), or ``None`` when one is missing."""
    cache = BaselineCache(config.baselines_dir)
    plain = to_dict(config)
    found = {}
    for task in tasks:
        metrics = cache.get(baseline_spec(plain, task.name))
        if metrics is None:
            return None
        found[task.name] = metrics
    return found


def _summary(value: object) -> object:
    """JSON for metadata values that are not plain: a tensor of indices by its length."""
    if isinstance(value, torch.Tensor):
        return {"rows": int(value.numel())}
    return str(value)


def run_experiment(
    config: ExperimentConfig,
    restart: bool = False,
    announce: Callable[[str], None] | None = None,
    adapt: Callable[[Trainer], object] | None = None,
) -> ExperimentResult:
    """Load data, build everything, train with selection on validation, test once.

    Writes ``config.yaml``, ``metrics.jsonl``, ``checkpoints/last.pt`` and ``results.json``
    into the run folder when ``output`` is set. A run folder that holds a checkpoint is
    resumed if its settings are these (else
    :class:`~polytask.training.run_folder.RunMismatchError`, and nothing in the folder is
    touched); ``restart=True`` removes the folder's run and starts over. The folder is
    locked while the run writes (:class:`~polytask.training.run_folder.RunFolder`).
    ``announce`` receives what the run chose for settings left out (the sized schedule)
    before training starts. ``adapt`` may change the trainer before it trains
    (:func:`polytask.distributed.data_parallel`); a trainer it leaves with ``writes`` off
    (a data-parallel rank other than 0) resumes from the run folder but writes nothing
    there.
    """
    prepared = prepare(config)
    if adapt is not None:
        adapt(prepared.trainer)
    config = prepared.config  # with the schedule's sized values
    if announce is not None and prepared.schedule_note:
        announce(prepared.schedule_note)
    out = prepared.output
    writes = out is not None and prepared.trainer.writes
    with RunFolder(out) if writes and out is not None else contextlib.nullcontext():
        if out is not None and writes:
            if restart:
                clear_run(out)
            prepared.trainer.check_resume()
            (out / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        return _train_and_test(config, prepared)


def _train_and_test(config: ExperimentConfig, prepared: Prepared) -> ExperimentResult:
    loaded, model, trainer, out = prepared.data, prepared.model, prepared.trainer, prepared.output
    started = time.perf_counter()
    fit = trainer.fit(
        loaded.train, loaded.val, resume=out is not None, batcher=make_batcher(config, loaded)
    )
    seconds = time.perf_counter() - started
    test = trainer.evaluate(loaded.test)
    val = fit.history[fit.best_epoch - 1]["val"] if fit.best_epoch else None
    result = ExperimentResult(
        test,
        val,
        fit.best_epoch,
        fit.steps,
        seconds,
        parameter_count(model),
        str(out) if out else None,
        scaled_tasks=[t.name for t in prepared.tasks if t.target_scale is not None],
    )
    if out is not None and trainer.writes:
        trainer.log("test", metrics=test, best_epoch=fit.best_epoch)
        (out / "results.json").write_text(
            json.dumps(
                {
                    "test": test,
                    "val": val,
                    "best_epoch": fit.best_epoch,
                    "steps": fit.steps,
                    "seconds": seconds,
                    "parameters": result.parameters,
                    "schedule": {
                        "epochs": config.schedule.epochs,
                        "batch_size": config.schedule.batch_size,
                        "sized": prepared.schedule_note,
                    },
                    "data": loaded.metadata,
                },
                indent=2,
                default=_summary,
            )
        )
        if config.report and config.only_tasks is None:
            report = run_report(
                out, TaskSet(prepared.tasks).directions(), cached_baselines(config, prepared.tasks)
            )
            result.report = report.write(out)[1]
            result.missing_plots = report.missing_plots
    return result
