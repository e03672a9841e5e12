"""An experiment's configuration: typed dataclasses loaded from YAML, the one mapping to
the trainer's settings, the run folder's name and the settings that define a run."""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from polytask.gradients.jacobian import Method
from polytask.gradients.protocol import Level
from polytask.training.config import (
    FieldError,
    check_range,
    from_dict,
    load_config_file,
    merge,
    parse_overrides,
    to_dict,
)
from polytask.training.run_folder import MAY_CHANGE_ON_RESUME, fingerprint
from polytask.training.trainer_config import TrainerConfig

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
    """Training length and learning-rate schedule. ``epochs`` and ``batch_size`` left out
    (``None``) are sized by the training rows when the run is prepared
    (:func:`~polytask.training.sizing.sized_schedule`)."""

    epochs: int | None = None
    batch_size: int | None = None
    max_steps: int | None = _TRAINER.max_steps
    scheduler: Literal["none", "cosine", "step"] = "none"
    monitor: str = _TRAINER.monitor
    patience: int | None = _TRAINER.patience
    grad_clip: float | None = _TRAINER.grad_clip

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1, optional=True)
        check_range("batch_size", self.batch_size, low=1, optional=True)
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


OUTPUT_FIELDS = ("dataset", "model", "balancer", "seed", "fingerprint")
"""The placeholders ``output`` may use."""


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
        if self.output is not None:
            fields = {f for _, f, _, _ in string.Formatter().parse(self.output) if f is not None}
            unknown = sorted(fields - set(OUTPUT_FIELDS))
            if unknown:
                valid = ", ".join("{" + f + "}" for f in OUTPUT_FIELDS)
                raise FieldError(
                    "output",
                    f"unknown placeholder {{{unknown[0]}}} in {self.output!r}; valid: {valid} "
                    "(write {{ and }} for literal braces)",
                )

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
        """Load ``path`` (``yaml.safe_load``), apply ``key=value`` overrides, check types.

        A relative ``dataset.options.source`` in the file (the ``table`` data set's file) is
        read relative to the file's folder, so a configuration and its table travel
        together; one given as an override is relative to the working directory."""
        data = merge(load_config_file(path), parse_overrides(overrides or []))
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
    *(key for key, name in TRAINER_KEYS.items() if name in MAY_CHANGE_ON_RESUME),
    "output",
    "report",
    "baselines_dir",
)
"""Experiment settings that do not define a run (a resume may change them): the keys of the
trainer's :data:`~polytask.training.run_folder.MAY_CHANGE_ON_RESUME`, and where the run
writes and reports."""
