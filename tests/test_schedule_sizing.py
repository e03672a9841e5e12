"""Training length sized by the data when the configuration gives none: a small table gets
enough optimizer steps, a large data set keeps the usual 10 epochs of 256."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from polytask.training.sizing import MIN_STEPS, sized_schedule


@pytest.mark.parametrize("rows", [40, 200, 537, 5_000, 29_000, 60_000])
def test_sized_schedule_gives_enough_steps_and_keeps_large_data_at_ten_epochs(rows: int) -> None:
    sized = sized_schedule(rows, epochs=None, batch_size=None, max_steps=None)
    steps = sized.epochs * math.ceil(rows / sized.batch_size)
    assert 32 <= sized.batch_size <= 256
    assert steps >= MIN_STEPS
    assert sized.epochs >= 10
    if rows >= 60_000:
        assert (sized.epochs, sized.batch_size) == (10, 256)
    assert str(rows) in sized.note and "schedule.epochs" in sized.note


def test_given_values_are_kept_and_max_steps_sets_the_epochs() -> None:
    assert sized_schedule(200, epochs=3, batch_size=64, max_steps=None).epochs == 3
    assert sized_schedule(200, epochs=None, batch_size=64, max_steps=None).batch_size == 64
    sized = sized_schedule(200, epochs=None, batch_size=50, max_steps=2_000)
    assert sized.epochs == 500  # 4 steps an epoch
    assert sized_schedule(200, epochs=7, batch_size=32, max_steps=None).note == ""


def test_a_table_experiment_without_a_schedule_trains_enough(tmp_path: Path) -> None:
    """The issue's case: 200 rows and no schedule got ~10 optimizer steps; now the run gets
    at least MIN_STEPS and records what was chosen."""
    from polytask.training.experiment import ExperimentConfig, run_experiment

    rows = ["x1,x2,y1,y2"] + [
        f"{i / 200:.4f},{(i * 7 % 200) / 200:.4f},{3 * i / 200 + 100:.4f},{(i * 7 % 200) / 20:.4f}"
        for i in range(200)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    config = {
        "dataset": {
            "name": "table",
            "options": {"source": "t.csv", "tasks": {"y1": "mse", "y2": "mse"}},
        },
        "output": str(tmp_path / "run"),
        "report": False,
        "progress": False,
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = run_experiment(ExperimentConfig.from_yaml(tmp_path / "c.yaml"))  # source beside it
    assert result.steps >= MIN_STEPS
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["schedule"]["batch_size"] == 32 and written["schedule"]["epochs"] >= 10


def test_trainer_warns_when_a_run_gets_few_optimizer_steps() -> None:
    """The Trainer's own defaults (10 epochs of 256) on 200 rows: 10 steps, said aloud."""
    import torch

    from polytask.balancers import create as balancer
    from polytask.data import TensorTaskDataset
    from polytask.models import create
    from polytask.tasks import Task, TaskSet
    from polytask.training import Trainer, TrainerConfig

    data = TensorTaskDataset(torch.randn(200, 3), {"y": torch.randn(200)})
    model = create("shared_bottom", input_dim=3, heads={"y": 1})
    optimizer = torch.optim.Adam(model.parameters())
    tasks = TaskSet([Task("y", "mse")])
    trainer = Trainer(
        model, tasks, balancer("equal"), optimizer, config=TrainerConfig(progress=False)
    )
    with pytest.warns(
        UserWarning, match=r"only 10 optimizer steps .*200 training rows.*sized_schedule"
    ):
        trainer.fit(data)
    enough = TrainerConfig(progress=False, epochs=20, batch_size=16)
    trainer = Trainer(model, tasks, balancer("equal"), optimizer, config=enough)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(data)
