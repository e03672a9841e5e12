"""Task samplers: frequencies, exhaustiveness, resume, ratios; settings 2 and 3 end to end."""

from __future__ import annotations

import collections

import pytest
import torch

import polytask
from polytask.data import DataSplits, TensorTaskDataset
from polytask.data.mixture import combine, concat_groups
from polytask.data.samplers import GroupBatcher, create_sampler
from polytask.training import Trainer, TrainerConfig, build_optimizer
from polytask.training.experiment import ExperimentConfig, run_experiment


def grouped(sizes: dict[str, int]) -> tuple[TensorTaskDataset, dict[str, torch.Tensor]]:
    """Rows whose single input column is the row id; one binary task per group."""
    parts = {}
    start = 0
    for g, n in sizes.items():
        ids = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1)
        parts[g] = TensorTaskDataset(ids, {g: torch.ones(n)})
        start += n
    return concat_groups(parts, "grouped")


def schedule_counts(
    sampler: str, sizes: dict[str, int], epochs: int, **options
) -> collections.Counter:
    data, groups = grouped(sizes)
    batcher = GroupBatcher(data, groups, create_sampler(sampler, **options), batch_size=10, seed=3)
    counts: collections.Counter = collections.Counter()
    for e in range(epochs):
        counts.update(batcher.plan(e))
    return counts


def test_temperature_and_fixed_ratio_frequencies() -> None:
    # p ~ n^(1/tau): 900^0.5 = 30, 100^0.5 = 10 -> 0.75 / 0.25.
    counts = schedule_counts("temperature", {"a": 900, "b": 100}, 40, tau=2.0)
    assert counts["a"] / sum(counts.values()) == pytest.approx(0.75, abs=0.02)
    counts = schedule_counts("fixed_ratio", {"a": 900, "b": 100}, 40, ratios={"a": 1, "b": 3})
    assert counts["a"] / sum(counts.values()) == pytest.approx(0.25, abs=0.02)
    sampler = create_sampler("annealed_temperature", tau_start=1.0, tau_end=1e6, epochs=5)
    sizes = {"a": 900, "b": 100}
    assert sampler.probabilities(sizes, 1)["a"] == pytest.approx(0.9)
    assert sampler.probabilities(sizes, 5)["a"] == pytest.approx(0.5, abs=1e-3)
    assert sampler.probabilities(sizes, 3)["a"] < 0.9


def test_proportional_is_exhaustive_and_differs_per_epoch() -> None:
    data, groups = grouped({"a": 95, "b": 31})
    batcher = GroupBatcher(data, groups, create_sampler("proportional"), batch_size=10, seed=0)
    orders = []
    for _ in range(2):
        rows = [int(v) for batch in batcher for v in batch.inputs[:, 0].tolist()]
        assert sorted(rows) == list(range(126))  # every row exactly once per epoch
        orders.append(rows)
    assert orders[0] != orders[1]
    for batch in GroupBatcher(data, groups, create_sampler("proportional"), 10):
        present = [t for t, y in batch.targets.items() if not torch.isnan(y).all()]
        assert len(present) == 1  # one task's rows per batch


@pytest.mark.parametrize("mixed", [False, True])
def test_resume_mid_epoch_continues_the_same_sequence(mixed: bool) -> None:
    data, groups = grouped({"a": 57, "b": 23, "c": 40})
    sampler = create_sampler("temperature", tau=3.0)

    def rows(b: GroupBatcher, n: int) -> list[list[int]]:
        out = []
        while len(out) < n:
            for batch in b:
                out.append([int(v) for v in batch.inputs[:, 0].tolist()])
                if len(out) == n:
                    break
        return out

    reference = rows(GroupBatcher(data, groups, sampler, 8, seed=5, mixed=mixed), 30)
    first = GroupBatcher(data, groups, sampler, 8, seed=5, mixed=mixed)
    head = rows(first, 17)
    resumed = GroupBatcher(data, groups, sampler, 8, seed=5, mixed=mixed)
    resumed.load_state_dict(first.state_dict())
    assert head + rows(resumed, 13) == reference


def test_main_ratio_and_round_robin() -> None:
    counts = schedule_counts(
        "main_ratio", {"main": 100, "x": 300, "y": 100}, 1, main="main", ratio=0.5
    )
    assert counts["main"] == 10 and counts["x"] + counts["y"] == 5
    data, groups = grouped({"a": 30, "b": 10})
    plan = GroupBatcher(data, groups, create_sampler("round_robin"), 10).plan(0)
    assert plan == ["a", "b", "a", "b", "a", "b"]
    with pytest.raises(KeyError, match="main group 'z'"):
        schedule_counts("main_ratio", {"a": 10}, 1, main="z")


def two_datasets() -> dict[str, DataSplits]:
    """Setting 3: two classification problems over different label sets, one input kind."""
    out = {}
    for k, (name, classes) in enumerate([("digits", 4), ("shapes", 3)]):
        g = torch.Generator().manual_seed(k)
        splits = []
        for n in (160 + 80 * k, 40, 40):
            x = torch.randn(n, 6, generator=g)
            y = (x[:, k] * classes).long().clamp(-classes + 1, classes - 1).abs()
            splits.append(TensorTaskDataset(x, {name: y}))
        task = polytask.Task(name, "ce", metrics=("accuracy",), num_classes=classes)
        out[name] = DataSplits(*splits, [task], (6,), {})
    return out


@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_settings_2_and_3_train_with_every_task_in_every_step(level: str) -> None:
    data = combine(two_datasets())
    groups = data.metadata["groups"]["train"]
    batcher = GroupBatcher(data.train, groups, create_sampler("proportional"), 32, mixed=True)
    for batch in batcher:
        for task, y in batch.targets.items():
            assert (y >= 0).any(), f"{task} absent from a mixed batch"
    torch.manual_seed(0)
    model = polytask.models.create("shared_bottom", heads={"digits": 4, "shapes": 3}, input_dim=6)
    balancer = polytask.balancers.create("mgda")
    optimizer = build_optimizer("adam", model, balancer.parameters(), lr=1e-2)
    config = TrainerConfig(epochs=3, batch_size=32, level=level, progress=False)  # type: ignore[arg-type]
    trainer = Trainer(model, polytask.TaskSet(data.tasks), balancer, optimizer, config=config)
    result = trainer.fit(
        data.train,
        data.val,
        batcher=GroupBatcher(data.train, groups, create_sampler("proportional"), 32, mixed=True),
    )
    assert result.steps == 3 * len(batcher)
    evaluation = trainer.evaluate(data.test)
    assert all(0 <= evaluation["metrics"][t]["accuracy"] <= 1 for t in ("digits", "shapes"))
    weights = [r for r in trainer.history]
    assert weights and trainer.skipped_steps == 0


def test_mixture_and_sampler_from_a_configuration(tmp_path) -> None:
    config = ExperimentConfig.from_dict(
        {
            "dataset": {
                "name": "mixture",
                "options": {
                    "parts": [
                        {"name": "synthetic_correlation", "group": "near", "prefix": "near_",
                         "options": {"correlation": 0.9, "num_samples": 400, "dim": 8}},
                        {"name": "synthetic_correlation", "group": "far", "prefix": "far_",
                         "tasks": ["y1"],
                         "options": {"correlation": 0.0, "num_samples": 200, "dim": 8}},
                    ]
                },
            },
            "sampler": {"name": "temperature", "options": {"tau": 2.0}},
            "schedule": {"epochs": 2, "batch_size": 32},
            "progress": False,
            "output": str(tmp_path / "run"),
        }
    )  # fmt: skip
    result = run_experiment(config)
    assert set(result.test["loss"]) == {"near_y1", "near_y2", "far_y1"}
    assert result.steps > 0
    with pytest.raises(ValueError, match="tasks have their own datasets"):
        bad = ExperimentConfig.from_dict(
            {
                "dataset": {"name": "synthetic_correlation", "options": {"num_samples": 100}},
                "sampler": {"name": "proportional"},
                "progress": False,
            }
        )
        run_experiment(bad)


def test_combining_different_input_shapes_names_the_cause() -> None:
    a = TensorTaskDataset(torch.zeros(3, 4), {"a": torch.zeros(3)})
    b = TensorTaskDataset(torch.zeros(3, 5), {"b": torch.zeros(3)})
    with pytest.raises(ValueError, match="share one input shape"):
        concat_groups({"a": a, "b": b}, "x")


def test_training_with_a_sampler_resumes_bit_identically(tmp_path) -> None:
    data = combine(two_datasets())
    groups = data.metadata["groups"]["train"]

    def trainer(folder) -> Trainer:
        torch.manual_seed(0)
        model = polytask.models.create(
            "shared_bottom", heads={"digits": 4, "shapes": 3}, input_dim=6
        )
        balancer = polytask.balancers.create("pcgrad")
        optimizer = build_optimizer("adam", model, balancer.parameters(), lr=1e-2)
        config = TrainerConfig(
            epochs=3, batch_size=16, progress=False, run_dir=str(folder), checkpoint_every=5
        )
        return Trainer(model, polytask.TaskSet(data.tasks), balancer, optimizer, config=config)

    def batcher() -> GroupBatcher:
        return GroupBatcher(data.train, groups, create_sampler("temperature", tau=2.0), 16, seed=4)

    straight = trainer(tmp_path / "a")
    straight.fit(data.train, data.val, restore_best=False, batcher=batcher())

    def crash(t: Trainer, step: int) -> None:
        if step == 13:
            raise RuntimeError("simulated crash")

    first = trainer(tmp_path / "b")
    first.callbacks = (crash,)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.fit(data.train, data.val, restore_best=False, batcher=batcher())
    resumed = trainer(tmp_path / "b")
    resumed.fit(data.train, data.val, resume=True, restore_best=False, batcher=batcher())
    assert resumed.step == straight.step
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)
