"""Every architecture of the zoo against the model protocol: output shapes, an exact parameter
partition, task isolation, agreement of the engine's fast paths with the per-task reference,
and one short epoch of training with loss-weighting and gradient balancers at both levels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import polytask
from polytask.data import TensorTaskDataset
from polytask.models import MultiTaskModel, check_partition
from polytask.training import Trainer, TrainerConfig, build_optimizer

N, D = 96, 12
HEADS = {"reg": 1, "bin": 1, "cls": 3}
SCHEMA = {
    "sparse": [{"name": "user", "vocab_size": 7}, {"name": "item", "vocab_size": 9}],
    "sequence": [{"name": "history", "vocab_size": 9, "shared_with": "item"}],
    "dense": [{"name": "age"}, {"name": "price", "dim": 2}],
}


def vectors(n: int, g: torch.Generator) -> Any:
    return torch.randn(n, D, generator=g)


def sequences(n: int, g: torch.Generator) -> Any:
    return torch.randn(n, 4, 3, generator=g)


def tabular(n: int, g: torch.Generator) -> Any:
    history = torch.randint(0, 9, (n, 5), generator=g)
    history[: n // 2, 3:] = -1  # padding
    return {
        "user": torch.randint(0, 7, (n,), generator=g),
        "item": torch.randint(0, 9, (n,), generator=g),
        "history": history,
        "age": torch.randn(n, generator=g),
        "price": torch.randn(n, 2, generator=g),
    }


def three_tasks() -> list[polytask.Task]:
    return [
        polytask.Task("reg", "mse"),
        polytask.Task("bin", "bce", metrics=("auc",)),
        polytask.Task("cls", "ce", metrics=("accuracy",), num_classes=3),
    ]


def three_targets(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "reg": torch.randn(n, generator=g),
        "bin": torch.randint(0, 2, (n,), generator=g).float(),
        "cls": torch.randint(0, 3, (n,), generator=g),
    }


def esmm_tasks() -> list[polytask.Task]:
    return [polytask.Task("ctr", "bce"), polytask.Task("ctcvr", "bce")]


def esmm_targets(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    click = torch.randint(0, 2, (n,), generator=g).float()
    return {"ctr": click, "ctcvr": click * torch.randint(0, 2, (n,), generator=g).float()}


@dataclass
class Case:
    model: str
    options: dict[str, Any]
    inputs: Callable[[int, torch.Generator], Any] = vectors
    tasks: Callable[[], list[polytask.Task]] = three_tasks
    targets: Callable[[int, torch.Generator], dict[str, torch.Tensor]] = three_targets
    heads: dict[str, int] | None = field(default_factory=lambda: dict(HEADS))

    def build(self) -> MultiTaskModel:
        torch.manual_seed(0)
        options = dict(self.options)
        if self.heads is not None:
            options["heads"] = self.heads
        return polytask.models.create(self.model, **options)


CASES = {
    "shared_bottom": Case("shared_bottom", {"input_dim": D, "trunk_dims": (16,)}),
    "mmoe": Case("mmoe", {"input_dim": D, "num_experts": 3, "expert_dims": (8,)}),
    "omoe": Case("omoe", {"input_dim": D, "num_experts": 3, "expert_dims": (8,)}),
    "cgc": Case("cgc", {"input_dim": D, "task_experts": 2, "expert_dims": (8,)}),
    "ple": Case("ple", {"input_dim": D, "levels": 3, "expert_dims": (8,)}),
    "cross_stitch": Case("cross_stitch", {"input_dim": D, "dims": (8, 8), "head_dims": (4,)}),
    "sluice": Case("sluice", {"input_dim": D, "dims": (8, 8, 8), "orthogonality": 0.1}),
    "mtan": Case("mtan", {"input_dim": D, "trunk_dims": (8, 8), "head_dims": (4,)}),
    "mrn": Case("mrn", {"input_dim": D, "trunk_dims": (8,), "head_dims": (6,), "update_every": 2}),
    "fafs": Case("fafs", {"input_dim": D, "dims": (8, 8)}),
    "fafs_grown": Case(
        "fafs", {"input_dim": D, "dims": (8, 8), "groups": [[(0, 1, 2)], [(0, 1), (2,)]]}
    ),
    "small_towers": Case(
        "small_towers",
        {"input_dim": D, "model_options": {"trunk_dims": (8,)}, "gamma": 0.5, "dims": (2,)},
    ),
    "ufo": Case("ufo", {"input_dim": D, "width": 8, "num_blocks": 3}),
    "ufo_rejoined": Case(
        "ufo",
        {
            "input_dim": D,
            "width": 8,
            "num_blocks": 3,
            "routes": {
                "reg": ["task", "shared", "shared"],
                "bin": ["task", "shared", "shared"],
                "cls": ["shared", "task", "task"],
            },
        },
    ),
    "transformer": Case(
        "transformer",
        {
            "input_dim": 3,
            "d_model": 8,
            "num_heads": 2,
            "ffn_dim": 16,
            "num_layers": 1,
            "dropout": 0.0,
            "pooling": "mean",
        },
        inputs=sequences,
    ),
    "bilstm": Case(
        "bilstm",
        {"input_dim": 3, "embed_dim": 8, "hidden": 4, "num_layers": 2, "dropout": 0.0},
        inputs=sequences,
    ),
    "esmm": Case(
        "esmm",
        {"input_layer": SCHEMA, "tower_dims": (8,)},
        inputs=tabular,
        tasks=esmm_tasks,
        targets=esmm_targets,
        heads=None,
    ),
    "mmoe_features": Case(
        "mmoe", {"input_layer": SCHEMA, "num_experts": 3, "expert_dims": (8,)}, inputs=tabular
    ),
    "ple_features": Case(
        "ple", {"input_layer": SCHEMA, "levels": 2, "expert_dims": (8,)}, inputs=tabular
    ),
}


def batch(case: Case, n: int = 16, seed: int = 1) -> tuple[Any, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return case.inputs(n, g), case.targets(n, g)


def test_every_registered_architecture_is_covered() -> None:
    assert set(polytask.models.available()) <= {c.model for c in CASES.values()}


@pytest.mark.parametrize("name", CASES)
def test_shapes_and_exact_partition(name: str) -> None:
    case = CASES[name]
    model = case.build()
    inputs, targets = batch(case)
    out = model(inputs)
    tasks = polytask.TaskSet(case.tasks())
    assert set(out.predictions) == set(tasks.names) == set(model.task_names)
    for task in tasks:
        pred = out.predictions[task.name]
        expected = (16, task.num_classes) if task.task_kind == "multiclass" else (16, 1)
        assert pred.shape == expected, (task.name, pred.shape)
    check_partition(model)
    groups = [set(map(id, model.shared_parameters()))]
    groups += [set(map(id, model.task_parameters(t))) for t in model.task_names]
    assert sum(len(g) for g in groups) == len(list(model.parameters()))
    assert all(groups[i].isdisjoint(groups[j]) for i in range(len(groups)) for j in range(i))
    assert torch.isfinite(tasks.losses(out, targets).detached()).all()


@pytest.mark.parametrize("name", CASES)
def test_one_task_leaves_other_tasks_parameters_untouched(name: str) -> None:
    case = CASES[name]
    model = case.build()
    inputs, targets = batch(case)
    tasks = polytask.TaskSet(case.tasks())
    for task in model.task_names:
        model.zero_grad(set_to_none=True)
        tasks.losses(model(inputs), targets)[task].backward()
        for other in model.task_names:
            if other == task:
                continue
            touched = [p.shape for p in model.task_parameters(other) if p.grad is not None]
            assert not touched, f"{task}'s loss reached {other}'s parameters {touched}"
        own = list(model.task_parameters(task))
        assert not own or any(p.grad is not None and p.grad.abs().sum() > 0 for p in own)


def _grads(model: MultiTaskModel) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("level", ["representation", "parameter"])
@pytest.mark.parametrize("name", CASES)
def test_engine_fast_paths_match_the_per_task_reference(name: str, level: str) -> None:
    """The model's features (branched shared state) give the same update as the engine's
    reference (one backward per task, without the branch shortcuts)."""
    case = CASES[name]
    inputs, targets = batch(case)
    tasks = polytask.TaskSet(case.tasks())
    results = []
    for method in ("auto", "loop"):
        model = case.build()
        balancer = polytask.balancers.create("upgrad")
        out = model(inputs)
        losses = tasks.losses(out, targets)
        features = out.features
        if level == "parameter":
            shortcut = features if method == "auto" and isinstance(features, dict) else None
            polytask.backward(
                losses, balancer, features=shortcut, shared_params=model.shared_parameters(),
                method=method,
            )  # fmt: skip
        else:
            assert features is not None
            polytask.backward(losses, balancer, features=features, method=method)
        results.append(_grads(model))
    for fast, reference in zip(*results, strict=True):
        torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-6)


BALANCERS = [("equal", "representation"), ("mgda", "representation"), ("mgda", "parameter"),
             ("pcgrad", "representation"), ("pcgrad", "parameter")]  # fmt: skip


@pytest.mark.parametrize(("balancer", "level"), BALANCERS)
@pytest.mark.parametrize("name", CASES)
def test_trains_one_short_epoch(name: str, balancer: str, level: str) -> None:
    case = CASES[name]
    g = torch.Generator().manual_seed(3)
    data = TensorTaskDataset(case.inputs(N, g), case.targets(N, g))
    val = TensorTaskDataset(case.inputs(32, g), case.targets(32, g))
    model = case.build()
    method = polytask.balancers.create(balancer)
    optimizer = build_optimizer("adam", model, method.parameters(), lr=1e-2)
    config = TrainerConfig(epochs=1, batch_size=32, level=level, progress=False)  # type: ignore[arg-type]
    trainer = Trainer(model, polytask.TaskSet(case.tasks()), method, optimizer, config=config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = trainer.fit(data, val)
    assert result.steps == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    shared = {id(p) for p in model.shared_parameters()}
    named = {id(p): n for n, p in model.named_parameters()}
    assert any(named[i] in changed for i in shared), "no shared parameter was trained"
    for task in model.task_names:
        assert any(named[id(p)] in changed for p in model.task_parameters(task)) or not list(
            model.task_parameters(task)
        )
    val_losses = result.history[0]["val"]["loss"]
    assert all(torch.isfinite(torch.tensor(v)) for v in val_losses.values())
