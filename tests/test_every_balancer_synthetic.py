"""Every registered balancer trains a small synthetic task set through ``Trainer.fit`` at each
level it supports, with one task labelled on a tenth of the rows (so many batches lack it:
the absent-task path), and lowers the training loss of every task. No data download: this
runs in every CI run (``test_every_balancer.py`` does the same on MultiMNIST when a local
copy exists)."""

from __future__ import annotations

import math

import pytest
import torch

import polytask
from polytask import Task, TaskSet
from polytask.data import TensorTaskDataset
from polytask.testing import factory
from polytask.training import Trainer, TrainerConfig, build_optimizer

TASKS = ("a", "b", "sparse")


def synthetic() -> TensorTaskDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 6, generator=g)
    shared = x @ torch.randn(6, 1, generator=g)
    targets = {
        name: (shared.squeeze(1) * (i + 1) + 0.3 * x[:, i] + 0.05 * torch.randn(320, generator=g))
        for i, name in enumerate(TASKS)
    }
    keep = torch.rand(320, generator=g) < 0.1
    targets["sparse"] = torch.where(keep, targets["sparse"], torch.nan)
    return TensorTaskDataset(x, targets)


def supported_levels(name: str) -> tuple[str, ...]:
    cls = polytask.balancers.BALANCERS.get(name).factory
    return ("representation", "parameter") if cls.needs == "losses" else tuple(cls.levels)


# Refusal of the other levels is checked by test_balancer_checks.py.
CASES = [
    (name, level) for name in polytask.balancers.available() for level in supported_levels(name)
]


@pytest.mark.parametrize(("name", "level"), CASES)
def test_balancer_trains_a_synthetic_task_set(name: str, level: str) -> None:
    torch.manual_seed(0)
    data = synthetic()
    tasks = TaskSet([Task(n, "mse") for n in TASKS])
    model = polytask.models.create(
        "shared_bottom", heads=dict.fromkeys(TASKS, 1), input_dim=6, trunk_dims=(16,)
    )
    balancer = factory(name)(len(TASKS))
    balancer.bind(list(TASKS))  # learnt per-task parameters exist before the optimizer
    optimizer = build_optimizer("adam", model, balancer.parameters(), lr=1e-2)
    config = TrainerConfig(epochs=4, batch_size=16, level=level, progress=False)  # type: ignore[arg-type]
    trainer = Trainer(model, tasks, balancer, optimizer, config=config)
    before = trainer.evaluate(data)["loss"]
    result = trainer.fit(data, data)
    after = trainer.evaluate(data)["loss"]
    assert result.steps == 80
    assert all(math.isfinite(v) for v in after.values())
    for task in TASKS:
        assert after[task] < before[task], (task, before[task], after[task])
