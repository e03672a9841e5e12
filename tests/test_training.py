"""Trainer: exact resume, atomic checkpoints, selection on validation, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import polytask
from polytask import Task, TaskSet
from polytask.data import IndexBatcher, TensorTaskDataset
from polytask.models import SharedBottom
from polytask.training import (
    StopTrainingSignal,
    Trainer,
    TrainerConfig,
    build_optimizer,
    load_checkpoint,
    read_jsonl,
    save_atomic,
)


def make_data(n: int = 96, seed: int = 0) -> TensorTaskDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return TensorTaskDataset(
        x,
        {
            "reg": x[:, 0] * 2 + 0.1 * torch.randn(n, generator=g),
            "cls": (x[:, 1] > 0).long() + (x[:, 2] > 0).long(),
        },
        {"reg": torch.rand(n, generator=g) > 0.2, "cls": torch.ones(n, dtype=torch.bool)},
    )


TASKS = [
    Task("reg", "mse", metrics=("mae",)),
    Task("cls", "ce", metrics=("accuracy",), num_classes=3),
]


def make_trainer(run_dir: Path | None, balancer: str = "pcgrad", **config) -> Trainer:
    torch.manual_seed(0)
    model = SharedBottom({"reg": 1, "cls": 3}, input_dim=5, trunk_dims=(16, 8), dropout=0.1)
    bal = polytask.balancers.create(balancer)
    optimizer = build_optimizer("adam", model, bal.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    settings = {
        "epochs": 3,
        "batch_size": 16,
        "progress": False,
        "log_every": 2,
        "run_dir": str(run_dir) if run_dir else None,
        **config,
    }
    return Trainer(model, TaskSet(TASKS), bal, optimizer, scheduler, TrainerConfig(**settings))


def params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


@pytest.mark.parametrize("stop_at", [4, 6, 13])
@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_resume_is_bit_identical(tmp_path: Path, stop_at: int, level: str) -> None:
    train, val = make_data(), make_data(32, seed=1)
    straight = make_trainer(tmp_path / "a", level=level)
    straight.fit(train, val, restore_best=False)
    expected = params(straight)

    def crash(trainer: Trainer, step: int) -> None:
        if step == stop_at:
            raise RuntimeError("simulated crash")

    # Checkpoints every 4 steps; a crash at step 6 or 13 loses the steps after the last one.
    first = make_trainer(tmp_path / "b", level=level, checkpoint_every=4)
    first.callbacks = (crash,)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.fit(train, val, restore_best=False)
    resumed = make_trainer(tmp_path / "b", level=level, checkpoint_every=4)
    result = resumed.fit(train, val, resume=True, restore_best=False)
    assert result.steps == straight.step
    for got, want in zip(params(resumed), expected, strict=True):
        assert torch.equal(got, want)
    assert resumed.history == straight.history


def test_stop_training_callback_checkpoints(tmp_path: Path) -> None:
    def stop(trainer: Trainer, step: int) -> None:
        if step == 3:
            raise StopTrainingSignal

    trainer = make_trainer(tmp_path, balancer="equal")
    trainer.callbacks = (stop,)
    result = trainer.fit(make_data())
    assert result.steps == 3
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["trainer"]["step"] == 3


def test_interrupted_checkpoint_write_keeps_previous(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"value": torch.tensor([1.0])}, path)

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    from polytask.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=r"\(disk full\); the previous checkpoint is intact"):
        save_atomic({"value": torch.tensor([2.0])}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["value"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_checkpoint_from_another_model_is_refused(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, balancer="equal", epochs=1)
    trainer.fit(make_data())
    torch.manual_seed(0)
    other = SharedBottom({"reg": 1, "cls": 3}, input_dim=5, trunk_dims=(32,))
    bal = polytask.balancers.create("equal")
    stranger = Trainer(
        other,
        TaskSet(TASKS),
        bal,
        build_optimizer("adam", other),
        config=TrainerConfig(epochs=2, batch_size=16, progress=False, run_dir=str(tmp_path)),
    )
    with pytest.raises(ValueError, match=r"model\.architecture"):
        stranger.fit(make_data(), resume=True)
    # The state check itself (a checkpoint that records no settings) names the mismatch.
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    del state["trainer"]["settings"]
    with pytest.raises(ValueError, match="another model"):
        stranger.load_state_dict(state, IndexBatcher(make_data(), 16))


def test_selection_uses_validation_and_logs(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, balancer="mgda", epochs=4, monitor="cls/accuracy")
    result = trainer.fit(make_data(), make_data(32, seed=1))
    scores = [h["monitor"]["cls/accuracy"] for h in result.history]
    assert result.best_score == max(scores)
    assert result.best_epoch == scores.index(max(scores)) + 1
    kinds = {r["kind"] for r in read_jsonl(tmp_path / "metrics.jsonl")}
    assert {"start", "train", "epoch"} <= kinds


def test_early_stopping(tmp_path: Path) -> None:
    trainer = make_trainer(None, balancer="equal", epochs=30, patience=1, monitor="loss")
    trainer.optimizer.param_groups[0]["lr"] = 0.0  # nothing improves after the first epoch
    result = trainer.fit(make_data(), make_data(32, seed=1))
    assert result.stopped_early and len(result.history) == 2


def test_trainer_skips_nonfinite_steps() -> None:
    trainer = make_trainer(None, balancer="equal", epochs=1)
    trainer.tasks = TaskSet(TASKS, on_nonfinite="skip")
    data = make_data(32)
    row = int(data.masks["reg"].nonzero()[0])  # a labelled row: exactly one batch is bad
    data.targets["reg"][row] = float("inf")
    before = params(trainer)
    with pytest.warns(RuntimeWarning, match="'reg'"):
        result = trainer.fit(data)
    assert result.skipped_steps == 1 and result.steps == 1
    assert any(not torch.equal(a, b) for a, b in zip(params(trainer), before, strict=True))


def test_trainer_errors() -> None:
    with pytest.raises(ValueError, match="level"):
        TrainerConfig(level="features")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metrics"):
        make_trainer(None, monitor="cls/auc")
    with pytest.raises(KeyError, match="Did you mean 'cls'"):
        make_trainer(None, monitor="clss/accuracy")
    with pytest.raises(ValueError, match="empty"):
        TensorTaskDataset(torch.zeros(0, 3), {"a": torch.zeros(0)})


def test_tensorboard_is_optional_with_install_hint(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        trainer = make_trainer(tmp_path, balancer="equal", epochs=1, tensorboard=True)
        trainer.fit(make_data(), make_data(32, seed=1))
        assert any((tmp_path / "tensorboard").iterdir())
    else:
        with pytest.raises(ImportError, match=r"polytask\[tensorboard\]"):
            make_trainer(tmp_path, balancer="equal", epochs=1, tensorboard=True)
    with pytest.raises(ValueError, match="run_dir"):
        TrainerConfig(tensorboard=True)


def test_build_optimizer_uses_the_fused_kernel_where_torch_has_one() -> None:
    model = polytask.models.create("shared_bottom", heads={"a": 1}, input_dim=4)
    version = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
    adam = build_optimizer("adam", model)
    assert adam.defaults["fused"] is (version >= (2, 4))
    assert build_optimizer("sgd", model).defaults["foreach"] is True
    chosen = build_optimizer("adam", model, foreach=True)
    assert chosen.defaults["foreach"] is True and not chosen.defaults["fused"]


def test_features_are_skipped_only_when_no_gradient_method_reads_them() -> None:
    torch.manual_seed(0)
    model = polytask.models.create(
        "mmoe", heads={"a": 1, "b": 1}, input_dim=6, num_experts=3, expert_dims=(5,)
    )
    x = torch.randn(8, 6)
    full = model(x)
    assert isinstance(full.features, dict) and set(full.features) == {"a", "b"}
    with polytask.features_unused():
        assert not polytask.features_used()
        lean = model(x)
    assert polytask.features_used() and lean.features is None
    for task in ("a", "b"):
        torch.testing.assert_close(lean.predictions[task], full.predictions[task])
    # The trainer skips them for a loss-weighting balancer and still trains every parameter.
    tasks = TaskSet([Task("a", "mse"), Task("b", "mse")])
    trainer = Trainer(
        model,
        tasks,
        polytask.balancers.create("equal"),
        build_optimizer("adam", model),
        config=TrainerConfig(progress=False),
    )
    from polytask.data import Batch

    trainer.train_step(Batch(x, {"a": torch.randn(8), "b": torch.randn(8)}))
    assert all(p.grad is not None for p in model.parameters())


def test_small_towers_get_their_features_when_the_balancer_reads_losses_only() -> None:
    # Inside features_unused the small towers still read the wrapped model's features.
    torch.manual_seed(0)
    inner = {"input_dim": 6, "num_experts": 3, "expert_dims": (5,)}
    model = polytask.models.create(
        "small_towers", model="mmoe", model_options=inner, heads={"a": 1, "b": 1},
        feature_dim=3 * 5,
    )  # fmt: skip
    x = torch.randn(8, 6)
    with polytask.features_unused():
        out = model(x)
    assert set(out.companions) == {"a", "b"}
    tasks = TaskSet([Task("a", "mse"), Task("b", "mse")])
    trainer = Trainer(
        model, tasks, polytask.balancers.create("equal"), build_optimizer("adam", model),
        config=TrainerConfig(progress=False),
    )  # fmt: skip
    from polytask.data import Batch

    trainer.train_step(Batch(x, {"a": torch.randn(8), "b": torch.randn(8)}))
    assert all(p.grad is not None for p in model.small.parameters())
