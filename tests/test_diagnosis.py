"""The seesaw diagnosis finds each cause on a problem built to have exactly that one, and
reports no cause that is absent."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import nn

import polytask
from polytask.data import TensorTaskDataset
from polytask.evaluation.diagnosis import Recording, diagnose
from polytask.models import MultiTaskModel
from polytask.outputs import TaskOutputs, branch
from polytask.studies import diagnose_training

N, D = 1024, 8


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g)
    u = torch.nn.functional.normalize(torch.randn(D, generator=g), dim=0)
    v = torch.nn.functional.normalize(torch.randn(D, generator=g), dim=0)
    return x, u, v


class OneOutput(MultiTaskModel):
    """A shared linear map read by both tasks with no head of their own: targets that
    disagree then pull the shared output in opposite directions."""

    def __init__(self) -> None:
        super().__init__()
        self.task_names = ("a", "b")
        self.trunk = nn.Linear(D, 1)

    def forward(self, x: torch.Tensor) -> TaskOutputs:
        views = branch(self.trunk(x), self.task_names)
        return TaskOutputs({t: views[t] for t in self.task_names}, views)

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.trunk]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return []


def bottom() -> MultiTaskModel:
    torch.manual_seed(0)
    return polytask.models.create(
        "shared_bottom", heads={"a": 1, "b": 1}, input_dim=D, trunk_dims=(16,)
    )


def scaled_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1000.0 * (pred - target) ** 2


@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_opposed_gradients_are_a_conflict_and_nothing_else(level: str) -> None:
    x, u, _ = inputs()
    data = TensorTaskDataset(x, {"a": x @ u, "b": -(x @ u)})
    tasks = polytask.TaskSet([polytask.Task("a", "mse"), polytask.Task("b", "mse")])
    torch.manual_seed(0)
    result = diagnose_training(OneOutput(), tasks, data, level=level, steps=120, lr=1e-2)
    assert result.present == ["conflict"], result.to_markdown()
    pair = result.findings["conflict"].numbers["pairs"]["a~b"]
    assert pair["mean_cosine"] < -0.9 and pair["negative_fraction"] > 0.95
    assert "pcgrad" in result.findings["conflict"].suggestions


def test_a_loss_scaled_by_1000_is_a_scale_mismatch_and_nothing_else() -> None:
    x, u, v = inputs()
    related = torch.nn.functional.normalize(u + 0.5 * v, dim=0)
    data = TensorTaskDataset(x, {"a": x @ u, "b": x @ related})
    tasks = polytask.TaskSet(
        [polytask.Task("a", "mse"), polytask.Task("b", scaled_mse, kind="regression")]
    )
    result = diagnose_training(bottom(), tasks, data, steps=150, lr=1e-2)
    assert result.present == ["scale"], result.to_markdown()
    numbers = result.findings["scale"].numbers
    assert 500 < numbers["loss_ratio"] < 2000 and numbers["gradient_norm_ratio"] > 300


def test_a_much_easier_task_is_a_speed_mismatch_and_nothing_else() -> None:
    x, u, _ = inputs()
    g = torch.Generator().manual_seed(5)
    noisy = x @ u + 2.0 * torch.randn(N, generator=g)  # mostly irreducible noise
    data = TensorTaskDataset(x, {"a": x @ u, "b": noisy})
    tasks = polytask.TaskSet([polytask.Task("a", "mse"), polytask.Task("b", "mse")])
    result = diagnose_training(bottom(), tasks, data, steps=200, lr=1e-2)
    assert result.present == ["speed"], result.to_markdown()
    ratios = result.findings["speed"].numbers["loss_ratio"]
    assert ratios["a"] < 0.2 and ratios["b"] > 0.6


def test_related_tasks_of_one_scale_show_no_cause() -> None:
    x, u, v = inputs()
    related = torch.nn.functional.normalize(u + 0.5 * v, dim=0)
    data = TensorTaskDataset(x, {"a": x @ u, "b": x @ related})
    tasks = polytask.TaskSet([polytask.Task("a", "mse"), polytask.Task("b", "mse")])
    result = diagnose_training(bottom(), tasks, data, steps=150, lr=1e-2)
    assert result.present == [], result.to_markdown()
    assert "No cause" in result.to_markdown()


def test_diagnose_by_hand_on_a_recording() -> None:
    """Numbers of the analysis against a hand-made recording."""
    rec = Recording(["a", "b"], "representation")
    for s in range(20):
        # Orthogonal gradients of norms 1 and 30; loss a halves, loss b constant.
        rec.add(torch.tensor([1.0 * 0.5 ** (s / 4), 2.0]), torch.tensor([[1.0, 0.0], [0.0, 900.0]]))
    result = diagnose(rec)
    assert result.present == ["speed", "scale"]
    scale = result.findings["scale"].numbers
    assert scale["gradient_norm_ratio"] == pytest.approx(30.0)
    assert scale["loss_ratio"] == pytest.approx(2.0)
    conflict = result.findings["conflict"].numbers["pairs"]["a~b"]
    assert conflict == {
        "mean_cosine": 0.0,
        "negative_fraction": 0.0,
        "strongly_negative_fraction": 0.0,
    }
    ratios = result.findings["speed"].numbers["loss_ratio"]
    assert ratios["b"] == pytest.approx(1.0)
    # First 5% = step 0 (1.0); last 10% = steps 18, 19.
    assert ratios["a"] == pytest.approx(np.mean([0.5 ** (18 / 4), 0.5 ** (19 / 4)]))
    with pytest.raises(ValueError, match="two tasks"):
        diagnose(Recording(["a"], "representation"))


def test_balancers_the_recorder_cannot_wrap() -> None:
    x, u, _ = inputs()
    data = TensorTaskDataset(x, {"a": x @ u, "b": x @ u})
    tasks = polytask.TaskSet([polytask.Task("a", "mse"), polytask.Task("b", "mse")])
    with pytest.raises(ValueError, match="weighted sum"):
        diagnose_training(
            bottom(),
            tasks,
            data,
            steps=2,
            balancer=polytask.balancers.create("uncertainty", num_tasks=2),
        )
    with pytest.raises(ValueError, match="full Jacobian"):
        diagnose_training(bottom(), tasks, data, steps=2, balancer="graddrop")
    # A Gramian method trains as itself while being recorded.
    result = diagnose_training(bottom(), tasks, data, steps=5, balancer="mgda")
    assert result.steps == 5


def test_near_orthogonal_gradients_are_not_a_conflict() -> None:
    """Cosines slightly below zero on every step (tasks using different features) are
    reported, but only clearly negative cosines count as a conflict."""
    rec = Recording(["a", "b"], "representation")
    for s in range(30):
        cos = -0.02 if s % 10 else -0.3  # one step in ten clearly negative
        rec.add(torch.tensor([1.0, 1.0]), torch.tensor([[1.0, cos], [cos, 1.0]]))
    pair = diagnose(rec).findings["conflict"].numbers["pairs"]["a~b"]
    assert pair["negative_fraction"] == 1.0
    assert pair["strongly_negative_fraction"] == pytest.approx(0.1)
    assert diagnose(rec).present == []
    rec.add(torch.tensor([1.0, 1.0]), torch.tensor([[1.0, -0.9], [-0.9, 1.0]]))
    for _ in range(20):
        rec.add(torch.tensor([1.0, 1.0]), torch.tensor([[1.0, -0.5], [-0.5, 1.0]]))
    assert diagnose(rec).present == ["conflict"]
