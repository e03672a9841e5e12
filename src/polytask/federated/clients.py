"""The clients of a configured federated run (``polytask federate``): the data set split
into clients (natural or Dirichlet), each client's training, validation and test rows, the
tasks every client learns and the model every client builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import polytask
from polytask.data.dataset import TensorTaskDataset
from polytask.federated.experiment import FederatedConfig
from polytask.training.config import ConfigError
from polytask.training.experiment_config import NamedConfig


@dataclass
class FederatedData:
    """``names[k]``: client ``k``'s name; its rows in ``train[k]``, ``val[k]``,
    ``test[k]``; the ``tasks`` every client learns; ``make_model`` builds one client's
    model (unseeded; the run seeds it)."""

    names: list[str]
    train: list[TensorTaskDataset]
    val: list[TensorTaskDataset]
    test: list[TensorTaskDataset]
    tasks: polytask.TaskSet
    make_model: Callable[[], Any]


def federated_data(config: FederatedConfig) -> FederatedData:
    """Load ``config.dataset`` and make its clients as ``config.clients`` says."""
    from polytask.data.client_splits import dirichlet_split_clients, natural_clients
    from polytask.training.experiment_build import build_model

    data = polytask.data.load(config.dataset.name, **config.dataset.options)
    assert isinstance(data, polytask.data.DataSplits)
    if config.clients.split != "natural" and config.target_scale != "auto":
        raise ConfigError(f"target_scale applies to natural clients; a {config.clients.split} "
                          "split keeps the data set's tasks as they are")  # fmt: skip
    if config.clients.split == "groups":
        names, (train, val, test) = grouped_clients(data, config.dataset.name)
        tasks = list(data.tasks)
        model = config.model
    elif config.clients.split == "dirichlet":
        assert config.clients.task is not None
        try:
            train, val, test = dirichlet_split_clients(
                [data.train, data.val, data.test], config.clients.task, config.clients.count,
                config.clients.alpha, config.seed,
            )  # fmt: skip
        except KeyError as error:
            raise ConfigError(f"clients.task: {error.args[0]}") from None
        tasks = list(data.tasks)
        names = [f"client{k}" for k in range(len(train))]
        model = config.model
    else:
        names, train = natural_clients(data.train)
        val_names, val = natural_clients(data.val)
        test_names, test = natural_clients(data.test)
        if val_names != names or test_names != names:
            lacking = sorted(set(names) - set(val_names) | set(names) - set(test_names))
            raise ConfigError(
                f"{config.dataset.name}: client(s) {lacking[:5]} have no validation or test rows"
            )
        tasks = [natural_task(data.tasks, train, config.target_scale, config.dataset.name)]
        model = NamedConfig(config.model.name, {"heads": {"y": 1}, **config.model.options})

    def make_model() -> Any:
        return build_model(model, data, tasks)

    return FederatedData(names, train, val, test, polytask.TaskSet(tasks), make_model)


def grouped_clients(
    data: Any, dataset: str
) -> tuple[list[str], tuple[list[TensorTaskDataset], ...]]:
    """One client per row group of ``data.metadata["groups"]`` (per split, ``{group: row
    indices}``), with all of the data set's tasks; a group missing from a split is an
    error naming it."""
    groups = data.metadata.get("groups")
    if not groups:
        raise ConfigError(
            f"{dataset}: clients.split=groups needs data whose rows are grouped "
            "(metadata['groups']), such as parkinsons {mode: patient_targets}; this data set "
            "has none: use natural (per-task data) or dirichlet"
        )
    names = list(groups["train"])
    for split in ("val", "test"):
        lacking = [n for n in names if n not in groups[split] or len(groups[split][n]) == 0]
        if lacking:
            raise ConfigError(f"{dataset}: group(s) {lacking[:5]} have no {split} rows")
    splits = tuple(
        [getattr(data, split).subset(groups[split][n], name=n) for n in names]
        for split in ("train", "val", "test")
    )
    return names, splits


def natural_task(
    tasks: list[polytask.Task], train: list[TensorTaskDataset], scale: Any, dataset: str
) -> polytask.Task:
    """The one task ``y`` natural clients learn: the data set's tasks' loss and metrics,
    its target standardised by the clients' pooled training rows (``scale="auto"``, for
    regression), by a given ``[mean, std]``, or not at all (``None``)."""
    losses = {str(t.loss) for t in tasks}
    if len(losses) != 1:
        raise ConfigError(
            f"{dataset}: natural clients learn one task, but the tasks have several losses "
            f"({', '.join(sorted(losses))})"
        )
    base = tasks[0]
    if scale == "auto":
        if base.task_kind != "regression":
            scale = None
        else:
            y = torch.cat([client.targets["y"].reshape(-1).double() for client in train])
            scale = (float(y.mean()), float(y.std()))
    return dataclasses.replace(base, name="y", target_scale=None if scale is None else tuple(scale))
