"""The trainer's parts as a user replaces or extends them: callbacks at every hook, loggers
(JSON lines, CSV, the user's own), the learning rate and task weights in the log."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from polytask.training import Callback, StopTrainingSignal, read_jsonl
from polytask.training.evaluation import monitor_score
from polytask.training.selection import ModelSelection

from .test_training import make_data, make_trainer


class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_step_end(self, trainer, step: int) -> None:
        self.calls.append(("step", step))

    def on_validation_end(self, trainer, evaluation: dict) -> None:
        self.calls.append(("validation", sorted(evaluation)))

    def on_epoch_end(self, trainer, record: dict) -> None:
        self.calls.append(("epoch", record["epoch"]))


def test_callback_hooks_run_in_order() -> None:
    recorder = Recorder()
    trainer = make_trainer(None, epochs=2)
    trainer.callbacks = (recorder,)
    trainer.fit(make_data(), make_data(32, seed=1))
    kinds = [k for k, _ in recorder.calls]
    assert kinds.count("step") == 12 and kinds.count("epoch") == 2
    first_epoch = kinds.index("epoch")
    assert kinds[first_epoch - 1] == "validation" and kinds[:6] == ["step"] * 6
    assert recorder.calls[first_epoch - 1][1] == ["loss", "metrics"]


def test_a_callback_stops_training_cleanly(tmp_path: Path) -> None:
    class StopAtThree(Callback):
        def on_step_end(self, trainer, step: int) -> None:
            if step == 3:
                raise StopTrainingSignal

    trainer = make_trainer(tmp_path, epochs=5)
    trainer.callbacks = (StopAtThree(),)
    assert trainer.fit(make_data()).steps == 3
    assert (tmp_path / "checkpoints" / "last.pt").is_file()


class ListLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def write(self, kind: str, **fields: Any) -> None:
        self.records.append((kind, fields))


def test_loggers_json_csv_and_the_users_own(tmp_path: Path) -> None:
    mine = ListLogger()
    trainer = make_trainer(tmp_path, epochs=2, csv=True)
    trainer.loggers.append(mine)
    trainer.fit(make_data(), make_data(32, seed=1))
    kinds = [k for k, _ in mine.records]
    assert kinds[0] == "start" and kinds.count("epoch") == 2 and "train" in kinds
    train = next(f for k, f in mine.records if k == "train")
    assert train["lr"] == [pytest.approx(0.01)]  # StepLR halves it after 5 steps
    assert set(train["weights"]) == {"reg", "cls"}
    assert [r["kind"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == kinds
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("train", "loss/reg") in names and ("train", "lr/0") in names
    assert ("epoch", "val/loss/cls") in names


def test_selection_and_monitor_parts() -> None:
    selection = ModelSelection(higher_is_better=False, patience=2)
    model = make_trainer(None).model
    assert selection.update(1.0, 1, model) and not selection.update(1.5, 2, model)
    assert not selection.should_stop and not selection.update(float("nan"), 3, model)
    assert selection.should_stop and selection.best_epoch == 1
    evaluation = {"loss": {"a": 1.0, "b": float("nan")}, "metrics": {"a": {"acc": 0.5}}}
    assert monitor_score(evaluation, "loss") == 1.0
    assert monitor_score(evaluation, "a/acc") == 0.5


def test_one_configuration_for_the_trainer() -> None:
    """Every trainer setting has one experiment key, and the defaults are the trainer's."""
    import dataclasses

    from polytask.training import TrainerConfig
    from polytask.training.experiment import TRAINER_KEYS, ExperimentConfig, trainer_config

    fields = {f.name for f in dataclasses.fields(TrainerConfig)}
    assert fields - set(TRAINER_KEYS.values()) == {"run_dir", "eval_batch_size"}
    config = ExperimentConfig.from_dict({"dataset": {"name": "synthetic_correlation"}})
    # Epochs and batch size are sized by the data when left out (tests/test_schedule_sizing.py);
    # given the trainer's, every default is the trainer's.
    assert (config.schedule.epochs, config.schedule.batch_size) == (None, None)
    sized = dataclasses.replace(config.schedule, epochs=10, batch_size=256)
    assert trainer_config(dataclasses.replace(config, schedule=sized), None) == TrainerConfig()
    changed = ExperimentConfig.from_dict(
        {"dataset": {"name": "x"}, "schedule": {"grad_clip": 2}, "csv": True, "output": "o"}
    )
    sized = dataclasses.replace(changed.schedule, epochs=10, batch_size=256)
    built = trainer_config(dataclasses.replace(changed, schedule=sized), "o")
    assert built.grad_clip == 2.0 and built.csv and built.run_dir == "o"


def test_model_is_sized_from_the_typed_input_spec() -> None:
    """The data set's InputSpec, not its metadata, decides the model's input options."""
    import dataclasses

    import polytask.data
    from polytask.data import InputSpec
    from polytask.training.experiment import NamedConfig, model_options

    data = polytask.data.load("synthetic_correlation", num_samples=200)
    assert data.spec == InputSpec((100,))
    options = model_options(NamedConfig("mmoe"), data, data.tasks)
    assert options["input_dim"] == 100
    tokens = dataclasses.replace(data, metadata={}, input=InputSpec((12,), vocab_size=50))
    assert model_options(NamedConfig("transformer"), tokens, data.tasks)["vocab_size"] == 50
    schema = {"sparse": [{"name": "a", "vocab_size": 4, "embed_dim": 2}]}
    named = dataclasses.replace(data, input=InputSpec((), feature_schema=schema))
    options = model_options(NamedConfig("mmoe"), named, data.tasks)
    assert options["input_layer"] == schema and "input_dim" not in options
    # Metadata keys alone no longer steer the model.
    sneaky = dataclasses.replace(data, metadata={"vocab_size": 7}, input=InputSpec((100,)))
    assert "vocab_size" not in model_options(NamedConfig("transformer"), sneaky, data.tasks)
