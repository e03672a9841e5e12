"""``polytask.load_run``: a run folder back as a model that predicts (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import polytask
import polytask.data as polytask_data
from polytask.cli.main import main


def test_load_run_predicts_like_the_trained_model(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "synthetic", f"output={out}", "dataset.options.num_samples=400"]
    assert main([*args, "schedule.epochs=2", "progress=false", "report=false"]) == 0
    run = polytask.load_run(out)
    assert run.tasks.names == ["y1", "y2"]
    assert run.results is not None and run.config["dataset"]["name"] == "synthetic_correlation"
    data = polytask_data.load("synthetic_correlation", num_samples=400)
    predictions = run.predict(data.test)
    assert set(predictions) == {"y1", "y2"} and predictions["y1"].shape[0] == len(data.test)
    # The test loss recomputed from the loaded model equals the run's own test loss.
    losses = run.tasks.losses(predictions, data.test.targets).detached()
    for i, task in enumerate(run.tasks.names):
        assert float(losses[i]) == pytest.approx(run.results["test"]["loss"][task], rel=1e-4)
    # Batching does not change predictions.
    torch.testing.assert_close(run.predict(data.test, batch_size=7)["y2"], predictions["y2"])


def test_load_run_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        polytask.load_run(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=r"model\.yaml"):
        polytask.load_run(tmp_path)


def test_load_run_of_a_trainer_run_and_of_a_model_of_your_own(tmp_path: Path) -> None:
    from polytask.models import SharedBottom

    from .test_training import make_data, make_trainer

    trainer = make_trainer(tmp_path, epochs=1)  # SharedBottom built directly, not by create()
    trainer.fit(make_data())
    with pytest.raises(ValueError, match="model="):
        polytask.load_run(tmp_path)
    fresh = SharedBottom({"reg": 1, "cls": 3}, input_dim=5, trunk_dims=(16, 8), dropout=0.1)
    run = polytask.load_run(tmp_path, model=fresh)
    assert run.tasks.names == ["reg", "cls"]
    x = make_data().inputs
    trainer.model.eval()
    torch.testing.assert_close(run.predict(x)["cls"], trainer.model(x).predictions["cls"])
