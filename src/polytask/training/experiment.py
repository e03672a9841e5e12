"""An experiment from configuration: data set, tasks, model, balancer, optimizer, schedule.

This is what ``polytask train CONFIG key=value ...`` runs; it is also a Python API::

    from polytask.training.experiment import ExperimentConfig, run_experiment
    result = run_experiment(ExperimentConfig.from_yaml("config.yaml", ["balancer.name=mgda"]))
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from polytask import balancers as balancer_registry
from polytask import data as data_registry
from polytask import models as model_registry
from polytask.balancers.base import Balancer
from polytask.data.samplers import GroupBatcher, create_sampler
from polytask.data.splits import DataSplits
from polytask.evaluation.baselines import BaselineCache, baseline_spec
from polytask.evaluation.reports import run_report
from polytask.gradients.jacobian import Method
from polytask.gradients.protocol import Level
from polytask.models.base import MultiTaskModel
from polytask.tasks.task import Task
from polytask.tasks.taskset import TaskSet
from polytask.training.config import (
    check_range,
    from_dict,
    load_yaml,
    merge,
    parse_overrides,
    to_dict,
)
from polytask.training.optim import build_optimizer, build_scheduler
from polytask.training.run_folder import RunFolder, clear_run, fingerprint
from polytask.training.trainer import Trainer, TrainerConfig, parameter_count

_TRAINER = TrainerConfig()
"""The trainer's defaults: the experiment's fields that configure the trainer default to
them (one place for every default)."""

TRAINER_KEYS: dict[str, str] = {
    "schedule.epochs": "epochs",
    "schedule.max_steps": "max_steps",
    "schedule.batch_size": "batch_size",
    "schedule.monitor": "monitor",
    "schedule.patience": "patience",
    "schedule.grad_clip": "grad_clip",
    "gradients.level": "level",
    "gradients.method": "gradient_method",
    "device": "device",
    "amp": "amp",
    "log_every": "log_every",
    "checkpoint_every": "checkpoint_every",
    "progress": "progress",
    "seed": "seed",
    "tensorboard": "tensorboard",
    "csv": "csv",
    "keep_freed_memory": "keep_freed_memory",
}
"""Experiment key -> :class:`~polytask.training.TrainerConfig` field: the one mapping
between the two (the trainer's ``run_dir`` is the experiment's output folder)."""


def trainer_config(config: ExperimentConfig, run_dir: str | None) -> TrainerConfig:
    """The trainer's configuration of ``config`` (:data:`TRAINER_KEYS`)."""
    values: dict[str, Any] = {}
    for key, name in TRAINER_KEYS.items():
        node: Any = config
        for part in key.split("."):
            node = getattr(node, part)
        values[name] = node
    return TrainerConfig(**values, run_dir=run_dir)


@dataclass
class NamedConfig:
    """A registry name and its options (checked by the registry when built)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskOverride:
    """Changes to a task the data set defines; unset fields keep the data set's value."""

    loss: str | None = None
    metrics: list[str] | None = None
    role: Literal["main", "auxiliary"] | None = None
    weight: float | None = None


@dataclass
class OptimizerConfig:
    """Optimizer (``adam``, ``adamw``, ``sgd``), learning rate and weight decay."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_range("lr", self.lr, above=0)
        check_range("weight_decay", self.weight_decay, low=0)


@dataclass
class ScheduleConfig:
    """Training length and learning-rate schedule."""

    epochs: int = _TRAINER.epochs
    batch_size: int = _TRAINER.batch_size
    max_steps: int | None = _TRAINER.max_steps
    scheduler: Literal["none", "cosine", "step"] = "none"
    monitor: str = _TRAINER.monitor
    patience: int | None = _TRAINER.patience
    grad_clip: float | None = _TRAINER.grad_clip

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("max_steps", self.max_steps, low=1, optional=True)
        check_range("patience", self.patience, low=1, optional=True)
        check_range("grad_clip", self.grad_clip, above=0, optional=True)


@dataclass
class SamplerConfig:
    """A task sampler for data whose tasks have their own datasets (``dataset: {name:
    mixture, ...}``): ``name`` (``proportional``, ``temperature``, ``annealed_temperature``,
    ``round_robin``, ``fixed_ratio``, ``main_ratio``), its ``options``, and ``mixed`` (every
    batch holds every task's rows)."""

    name: str = "proportional"
    options: dict[str, Any] = field(default_factory=dict)
    mixed: bool = False


@dataclass
class GradientConfig:
    """Where and how gradient methods take per-task gradients."""

    level: Level = _TRAINER.level
    method: Method = _TRAINER.gradient_method


@dataclass
class ExperimentConfig:
    """Everything one training run needs; loads from YAML (see ``polytask/configs/``).

    ``only_tasks`` trains a subset of the data set's tasks (one task: a single-task
    baseline, same model with one head and the same budget). ``report`` writes
    ``report.md``/``report.html`` into the run folder; ``baselines_dir`` is the single-task
    baseline cache it reads (default ``$POLYTASK_CACHE/baselines`` or
    ``~/.cache/polytask/baselines``). ``keep_freed_memory`` is passed to
    :class:`~polytask.training.TrainerConfig` (on the CPU with glibc, the process keeps freed
    memory for the next step instead of page-faulting it in again; process-wide)."""

    dataset: NamedConfig
    model: NamedConfig = field(default_factory=lambda: NamedConfig("shared_bottom"))
    balancer: NamedConfig = field(default_factory=lambda: NamedConfig("equal"))
    tasks: dict[str, TaskOverride] = field(default_factory=dict)
    only_tasks: list[str] | None = None
    sampler: SamplerConfig | None = None
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    gradients: GradientConfig = field(default_factory=GradientConfig)
    seed: int = _TRAINER.seed
    device: str = _TRAINER.device
    amp: bool = _TRAINER.amp
    output: str | None = None
    log_every: int = _TRAINER.log_every
    checkpoint_every: int = _TRAINER.checkpoint_every
    progress: bool = _TRAINER.progress
    tensorboard: bool = _TRAINER.tensorboard
    csv: bool = _TRAINER.csv
    report: bool = True
    baselines_dir: str | None = None
    keep_freed_memory: bool = _TRAINER.keep_freed_memory

    def __post_init__(self) -> None:
        check_range("log_every", self.log_every, low=1)
        check_range("checkpoint_every", self.checkpoint_every, low=0)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
        """Load ``path`` (``yaml.safe_load``), apply ``key=value`` overrides, check types."""
        data = merge(load_yaml(path), parse_overrides(overrides or []))
        return from_dict(cls, data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Build from a mapping (same checks as YAML)."""
        return from_dict(cls, data)

    def run_settings(self) -> dict[str, Any]:
        """The settings that define the run: everything but how long it trains
        (``schedule.epochs``, ``max_steps``, ``patience``), where it writes and what it logs
        or reports, and where it runs (:data:`MAY_CHANGE`)."""
        plain = to_dict(self)
        for key in MAY_CHANGE:
            parent, _, leaf = key.rpartition(".")
            (plain[parent] if parent else plain).pop(leaf, None)
        return plain

    def fingerprint(self) -> str:
        """Eight hex digits that change with any setting of :meth:`run_settings`."""
        return fingerprint(self.run_settings())

    def output_dir(self) -> Path | None:
        """The run folder (``output`` with ``{dataset}``, ``{model}``, ``{balancer}``,
        ``{seed}`` and ``{fingerprint}`` filled in), or ``None``."""
        if self.output is None:
            return None
        return Path(
            self.output.format(
                dataset=self.dataset.name,
                model=self.model.name,
                balancer=self.balancer.name,
                seed=self.seed,
                fingerprint=self.fingerprint(),
            )
        )

    def default_output(self) -> Path:
        """The folder :data:`DEFAULT_OUTPUT` names for these settings: two configurations
        that differ in a setting that defines the run never share it."""
        return dataclasses.replace(self, output=DEFAULT_OUTPUT).output_dir() or Path()


DEFAULT_OUTPUT = "runs/{dataset}-{model}-{balancer}-seed{seed}-{fingerprint}"
"""The run folder template of the packaged configurations."""

MAY_CHANGE = (
    "schedule.epochs",
    "schedule.max_steps",
    "schedule.patience",
    "output",
    "log_every",
    "checkpoint_every",
    "progress",
    "tensorboard",
    "csv",
    "report",
    "baselines_dir",
    "keep_freed_memory",
    "device",
)
"""Experiment settings that do not define a run (a resume may change them)."""


def apply_task_overrides(tasks: list[Task], overrides: dict[str, TaskOverride]) -> list[Task]:
    """The data set's tasks with ``overrides`` applied; unknown task names raise."""
    by_name = {t.name: t for t in tasks}
    for name in overrides:
        if name not in by_name:
            from polytask._registry import unknown_name_message

            raise KeyError(unknown_name_message("task in configuration", name, list(by_name)))
    result = []
    for task in tasks:
        change = overrides.get(task.name)
        if change is None:
            result.append(task)
            continue
        result.append(
            Task(
                task.name,
                change.loss if change.loss is not None else task.loss,
                tuple(change.metrics) if change.metrics is not None else task.metrics,
                change.role or task.role,
                change.weight if change.weight is not None else task.weight,
                task.num_classes,
                None if change.loss is not None else task.kind,
            )
        )
    return result


def head_sizes(data: DataSplits, tasks: list[Task]) -> dict[str, int]:
    """Output size of each task's head: classes for ``ce``, target width otherwise."""
    sizes = {}
    for task in tasks:
        if task.task_kind == "multiclass":
            assert task.num_classes is not None
            sizes[task.name] = task.num_classes
        else:
            target = data.train.targets[task.name]
            sizes[task.name] = 1 if target.dim() == 1 else int(target[0].numel())
    return sizes


def build_model(config: NamedConfig, data: DataSplits, tasks: list[Task]) -> MultiTaskModel:
    """The configured architecture with one head per task, sized from the data."""
    return model_registry.create(config.name, **model_options(config, data, tasks))


def model_options(config: NamedConfig, data: DataSplits, tasks: list[Task]) -> dict[str, Any]:
    """The configured model's options with what the data decides filled in: one head per
    task, and the input (input size, vocabulary or feature schema)."""
    options = dict(config.options)
    options.setdefault("heads", head_sizes(data, tasks))
    accepted = model_registry.MODELS.get(config.name).options()
    if "vocab_size" in accepted and "vocab_size" in data.metadata:
        # Token inputs: the data set's vocabulary sizes the model's embeddings.
        options.setdefault("vocab_size", data.metadata["vocab_size"])
    schema = data.metadata.get("feature_schema")
    if schema is not None and "input_layer" not in options:
        # Named inputs of a recommendation data set: its feature schema is the input layer.
        options["input_layer"] = schema
    if (
        "input_dim" in accepted
        and "input_dim" not in options
        and not options.get("input_layer")
        and "vocab_size" not in options
    ):
        trunk = options.get("trunk", "mlp")
        if trunk == "mlp":
            options["input_dim"] = int(math.prod(data.input_shape))
    return options


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


@dataclass
class Prepared:
    """The pieces of one run, built from its configuration and ready to train."""

    config: ExperimentConfig
    data: DataSplits
    tasks: list[Task]
    model: MultiTaskModel
    trainer: Trainer
    output: Path | None
    model_options: dict[str, Any] = field(default_factory=dict)


def select_tasks(tasks: list[Task], only: list[str] | None) -> list[Task]:
    """``tasks`` restricted to the names in ``only`` (all when ``None``); unknown names raise."""
    if only is None:
        return tasks
    names = [t.name for t in tasks]
    for name in only:
        if name not in names:
            from polytask._registry import unknown_name_message

            raise KeyError(unknown_name_message("task in only_tasks", name, names))
    if not only:
        raise ValueError("only_tasks must name at least one task")
    return [t for t in tasks if t.name in only]


def prepare(
    config: ExperimentConfig,
    wrap_balancer: Callable[[Balancer], Balancer] | None = None,
    write: bool = True,
) -> Prepared:
    """Load the data and build tasks, model, balancer, optimizer, schedule and trainer.

    ``wrap_balancer`` may wrap the configured balancer (the diagnosis records through it);
    ``write=False`` leaves the run folder alone (no config copy, no log).
    """
    torch.manual_seed(config.seed)
    loaded = data_registry.load(config.dataset.name, **config.dataset.options)
    assert isinstance(loaded, DataSplits)
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
    resolved = model_options(config.model, loaded, tasks)
    model = model_registry.create(config.model.name, **resolved)
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
    return Prepared(config, loaded, tasks, model, trainer, out, resolved)


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


def make_batcher(config: ExperimentConfig, data: DataSplits) -> GroupBatcher | None:
    """The configured task sampler over the data's groups, or ``None`` (plain batches)."""
    if config.sampler is None:
        return None
    groups = data.metadata.get("groups", {}).get("train")
    if groups is None:
        raise ValueError(
            f"sampler {config.sampler.name!r} needs data whose tasks have their own datasets "
            "(dataset: {name: mixture, options: {parts: [...]}}); this data set has one table"
        )
    sampler = create_sampler(config.sampler.name, **config.sampler.options)
    return GroupBatcher(
        data.train, groups, sampler, config.schedule.batch_size, seed=config.seed,
        mixed=config.sampler.mixed,
    )  # fmt: skip


def run_experiment(config: ExperimentConfig, restart: bool = False) -> ExperimentResult:
    """Load data, build everything, train with selection on validation, test once.

    Writes ``config.yaml``, ``metrics.jsonl``, ``checkpoints/last.pt`` and ``results.json``
    into the run folder when ``output`` is set. A run folder that holds a checkpoint is
    resumed if its settings are these (else
    :class:`~polytask.training.run_folder.RunMismatchError`, and nothing in the folder is
    touched); ``restart=True`` removes the folder's run and starts over. The folder is
    locked while the run writes (:class:`~polytask.training.run_folder.RunFolder`).
    """
    prepared = prepare(config)
    out = prepared.output
    with RunFolder(out) if out is not None else contextlib.nullcontext():
        if out is not None:
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
    )
    if out is not None:
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
