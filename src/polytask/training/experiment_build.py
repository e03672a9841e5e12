"""Building an experiment's pieces from its configuration and data: tasks with overrides,
the model sized from the data, the task sampler's batcher."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from polytask import models as model_registry
from polytask.data.samplers import GroupBatcher, create_sampler
from polytask.data.splits import DataSplits
from polytask.models.base import MultiTaskModel
from polytask.tasks.task import Task
from polytask.training.experiment_config import ExperimentConfig, NamedConfig, TaskOverride


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
            dataclasses.replace(
                task,
                loss=change.loss if change.loss is not None else task.loss,
                metrics=tuple(change.metrics) if change.metrics is not None else task.metrics,
                role=change.role or task.role,
                weight=change.weight if change.weight is not None else task.weight,
                kind=None if change.loss is not None else task.kind,  # re-read from the loss
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


def build_model(
    config: NamedConfig, data: DataSplits, tasks: list[Task], data_tasks: list[str] | None = None
) -> MultiTaskModel:
    """The configured architecture with one head per task, sized from the data (``data_tasks``:
    the data set's task names, when ``tasks`` are some of them; see :func:`model_options`)."""
    return model_registry.create(config.name, **model_options(config, data, tasks, data_tasks))


def model_options(
    config: NamedConfig, data: DataSplits, tasks: list[Task], data_tasks: list[str] | None = None
) -> dict[str, Any]:
    """The configured model's options with what the data decides filled in: one head per
    task, and the input (input size, vocabulary or feature schema). A run on some of the
    data set's tasks (``data_tasks``: all its task names; default ``data.tasks``) keeps the
    ``head_types`` of its own tasks only."""
    options = dict(config.options)
    if "heads" not in options:
        options["heads"] = head_sizes(data, tasks)
    if isinstance(options.get("head_types"), dict):
        # A name that is no task of the data still reaches the model, which says so.
        names = data_tasks if data_tasks is not None else [t.name for t in data.tasks]
        left_out = set(names) - {t.name for t in tasks}
        options["head_types"] = {
            k: v for k, v in options["head_types"].items() if k not in left_out
        }
    spec = data.spec  # the data set's typed description of its input
    accepted = model_registry.MODELS.get(config.name).options()
    if spec.kind == "tokens" and "vocab_size" in accepted:
        # Token inputs: the data set's vocabulary sizes the model's embeddings.
        options.setdefault("vocab_size", spec.vocab_size)
    if spec.kind == "features" and "input_layer" not in options:
        # Named inputs of a recommendation data set: its feature schema is the input layer.
        options["input_layer"] = spec.feature_schema
    if (
        spec.kind == "tensor"
        and "input_dim" in accepted
        and "input_dim" not in options
        and not options.get("input_layer")
        and options.get("trunk", "mlp") == "mlp"
    ):
        options["input_dim"] = int(math.prod(spec.shape))
    return options


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
    assert config.schedule.batch_size is not None, "make_batcher needs the prepared config"
    return GroupBatcher(
        data.train, groups, sampler, config.schedule.batch_size, seed=config.seed,
        mixed=config.sampler.mixed,
    )  # fmt: skip
