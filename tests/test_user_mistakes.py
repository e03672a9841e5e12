"""A user's mistake gives one line (what, where, the fix), never a traceback; silent wrong
inputs (bce targets outside 0/1, an ignored role) are refused or warned about; an internal
bug still shows its traceback (``--debug`` shows it for user errors too)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from polytask.cli.main import main
from polytask.tasks import Task, TaskSet

from .conftest import DATA_ROOT

CONFIG = str(Path(__file__).parents[1] / "src" / "polytask" / "configs" / "synthetic.yaml")
SMALL = ["schedule.epochs=1", "dataset.options.num_samples=300", "report=false", "progress=false"]


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    lines = capsys.readouterr().err.splitlines(keepends=True)
    err = "".join(line for line in lines if not line.startswith("polytask: warning: "))
    assert err.startswith("polytask: error: ") and err.count("\n") == 1, err
    return err


def test_unknown_output_placeholder_names_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = one_line_error(capsys, "train", CONFIG, "output='runs/{foo}'", *SMALL)
    assert "{foo}" in err and "{fingerprint}" in err


def test_output_that_is_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    err = one_line_error(capsys, "train", CONFIG, f"output={tmp_path}/file/run", *SMALL)
    assert f"{tmp_path}/file" in err and "not a directory" in err.lower()


def _unsafe_pickle() -> bytes:
    import datetime
    import io

    buffer = io.BytesIO()
    torch.save({"when": datetime.datetime(2026, 1, 1)}, buffer)  # refused by weights_only
    return buffer.getvalue()


def _foreign_checkpoint() -> bytes:
    import io

    from polytask.training.trainer_state import FORMAT

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "model": {}}, buffer)  # a polytask tag, nothing else
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [b"truncated", b"PK\x03\x04" + bytes(range(256)) * 8, _unsafe_pickle(), _foreign_checkpoint()],
    ids=["truncated", "random", "unsafe-pickle", "foreign"],
)
def test_unreadable_checkpoint_names_the_file_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    out = tmp_path / "run"
    assert main(["train", CONFIG, f"output={out}", *SMALL]) == 0
    capsys.readouterr()
    (out / "checkpoints" / "last.pt").write_bytes(content)
    err = one_line_error(capsys, "train", CONFIG, f"output={out}", *SMALL)
    assert str(out / "checkpoints" / "last.pt") in err and "--restart" in err


def test_missing_tensorboard_extra_is_one_line_and_leaves_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "run"
    err = one_line_error(capsys, "train", CONFIG, f"output={out}", "tensorboard=true", *SMALL)
    assert "pip install 'polytask[tensorboard]'" in err
    assert not out.exists()


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception, match="foo"):
        main(["--debug", "train", CONFIG, "output='runs/{foo}'", *SMALL])


def test_ce_class_out_of_range_names_the_task() -> None:
    tasks = TaskSet([Task("digit", "ce", num_classes=5)])
    with pytest.raises(ValueError, match=r"task 'digit'.*class 7.*5 classes"):
        tasks.losses({"digit": torch.zeros(3, 5)}, {"digit": torch.tensor([1, 7, 2])})


@pytest.mark.parametrize("bad", [-1.0, 2.0])
def test_bce_targets_outside_zero_one_are_refused(bad: float) -> None:
    tasks = TaskSet([Task("click", "bce")])
    target = torch.tensor([0.0, 1.0, bad, float("nan")])
    with pytest.raises(ValueError, match=r"task .click.*between 0 and 1"):
        tasks.losses({"click": torch.zeros(4)}, {"click": target})


def test_trainer_checks_targets_before_training() -> None:
    from polytask.balancers import create as balancer
    from polytask.data import TensorTaskDataset
    from polytask.models import create
    from polytask.training import Trainer, TrainerConfig

    data = TensorTaskDataset(torch.randn(64, 3), {"click": torch.full((64,), 2.0)})
    model = create("shared_bottom", input_dim=3, heads={"click": 1})
    trainer = Trainer(model, TaskSet([Task("click", "bce")]), balancer("equal"),
                      torch.optim.SGD(model.parameters(), lr=0.1),
                      config=TrainerConfig(progress=False, epochs=1))  # fmt: skip
    with pytest.raises(ValueError, match=r"^training data: task 'click' \(bce\).*got 2"):
        trainer.fit(data)
    assert trainer.step == 0


def test_a_role_the_balancer_ignores_is_warned_about_once() -> None:
    from polytask.balancers import create

    tasks = [Task("a", "mse"), Task("b", "mse", role="auxiliary")]
    with pytest.warns(UserWarning, match=r"pcgrad.*ignores.*role.*primary_auxiliary") as record:
        create("pcgrad", tasks=tasks)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create("primary_auxiliary", tasks=tasks)
        create("pcgrad", tasks=[Task("a", "mse"), Task("b", "mse")])


def test_task_losses_show_their_values() -> None:
    tasks = TaskSet([Task("a", "mse"), Task("b", "mse")])
    losses = tasks.losses(
        {"a": torch.ones(2), "b": torch.zeros(2)}, {"a": torch.zeros(2), "b": torch.zeros(2)}
    )
    assert repr(losses) == "TaskLosses(a=1.0000, b=0.0000)"


def test_cli_warnings_are_one_line_too(tmp_path: Path) -> None:
    import subprocess
    import sys

    argv = ["train", CONFIG, f"output={tmp_path / 'r'}", *SMALL]
    run = subprocess.run(
        [sys.executable, "-m", "polytask.cli.main", *argv], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "polytask: warning: only" in run.stderr and ".py:" not in run.stderr


def test_demo_without_mnist_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYTASK_OFFLINE", "1")
    monkeypatch.setenv("POLYTASK_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--epochs", "1", "--train-size", "64", "--balancers", "equal"]) == 2
    err = capsys.readouterr().err
    assert "polytask: error: train-images" in err and "downloaded once" in err
    assert "POLYTASK_DATA" in err and "mnist/" in err


@pytest.mark.skipif(
    not __import__("tests.conftest", fromlist=["have_data"]).have_data("mnist"),
    reason="local MNIST copy not found",
)
def test_demo_prints_where_its_reports_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYTASK_DATA", str(DATA_ROOT))
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--epochs", "1", "--train-size", "256", "--val-size", "64", "--test-size", "64",
            "--balancers", "equal", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    reports = [
        line.split("report: ")[1] for line in out.splitlines() if line.startswith("report: ")
    ]
    assert len(reports) == 1 and Path(tmp_path, reports[0]).is_file()


def test_a_full_disk_while_checkpointing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save on a full disk raises 'unexpected pos ...': the user reads what failed, that
    the previous checkpoint is intact, and what to do."""
    import polytask.training.checkpoint as ckpt

    def full(*_: object, **__: object) -> None:
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . unexpected pos 77568 vs 77456"
        )

    monkeypatch.setattr(ckpt.torch, "save", full)
    err = one_line_error(capsys, "train", CONFIG, f"output={tmp_path / 'r'}", *SMALL)
    assert "last.pt" in err and "disk full" in err and "intact" in err


def test_a_label_the_mask_leaves_out_is_not_checked_or_reported() -> None:
    """The range check and its message read the same mask as the loss: a masked-out 5.0 is
    ignored, and the message names the labelled bad value (2), not the masked one."""
    tasks = TaskSet([Task("click", "bce")])
    pred = torch.zeros(3)
    masked = torch.tensor([False, True, True])
    tasks.losses({"click": pred}, {"click": torch.tensor([5.0, 1.0, 0.0])}, {"click": masked})
    with pytest.raises(ValueError, match=r"got 2;"):
        tasks.losses({"click": pred}, {"click": torch.tensor([5.0, 2.0, 0.0])}, {"click": masked})
