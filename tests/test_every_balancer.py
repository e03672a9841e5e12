"""Every registered balancer trains the MultiMNIST shared bottom for a short epoch at each
level it supports, and refuses the others with a clear error."""

from __future__ import annotations

import pytest
import torch

import polytask
from polytask.balancers import BALANCERS
from polytask.balancers.initial_loss import label_prior_loss
from polytask.training import Trainer, TrainerConfig, build_optimizer

from .conftest import DATA_ROOT, have_data

pytestmark = pytest.mark.skipif(not have_data("mnist"), reason="local MNIST copy not found")


@pytest.fixture(scope="module")
def data():
    return polytask.data.load(
        "multi_mnist", root=DATA_ROOT, train_size=192, val_size=64, test_size=64
    )


def options_for(name: str, data) -> dict:
    entry = BALANCERS.get(name)
    options: dict = {}
    if "num_tasks" in entry.options():
        options["num_tasks"] = 2
    if name == "prior_loss":
        options["priors"] = {
            t.name: label_prior_loss(data.train.targets[t.name], t.task_kind) for t in data.tasks
        }
    return options


CASES = [
    (name, level)
    for name in polytask.balancers.available()
    for level in ("representation", "parameter")
]


@pytest.mark.parametrize(("name", "level"), CASES)
def test_balancer_trains_or_refuses(name: str, level: str, data) -> None:
    torch.manual_seed(0)
    model = polytask.models.create(
        "shared_bottom", heads={"left": 10, "right": 10}, trunk="lenet", head_dims=(16,)
    )
    balancer = polytask.balancers.create(name, **options_for(name, data))
    optimizer = build_optimizer("adam", model, balancer.parameters(), lr=1e-3)
    config = TrainerConfig(epochs=1, batch_size=64, level=level, progress=False)  # type: ignore[arg-type]
    supported = balancer.needs == "losses" or level in balancer.levels
    if not supported:
        with pytest.raises(ValueError, match="level only"):
            Trainer(model, polytask.TaskSet(data.tasks), balancer, optimizer, config=config)
        return
    trainer = Trainer(model, polytask.TaskSet(data.tasks), balancer, optimizer, config=config)
    before = [p.detach().clone() for p in model.parameters()]
    result = trainer.fit(data.train, data.val)
    assert result.steps == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))
    assert all(torch.isfinite(torch.tensor(v)) for v in result.history[0]["val"]["loss"].values())
