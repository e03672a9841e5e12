"""The command line: demo end to end (shortened), train with overrides, list, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polytask.cli.main import main
from polytask.training.config import ConfigError
from polytask.training.experiment import ExperimentConfig

from .conftest import DATA_ROOT, have_data


@pytest.mark.skipif(not have_data("mnist"), reason="local MNIST copy not found (POLYTASK_DATA)")
def test_demo_runs_end_to_end(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POLYTASK_DATA", str(DATA_ROOT))
    code = main(
        [
            "demo",
            "--epochs",
            "1",
            "--train-size",
            "1500",
            "--val-size",
            "300",
            "--test-size",
            "300",
            "--balancers",
            "equal,mgda",
            "--output",
            str(tmp_path),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    table = out[out.index("Test split") :]
    assert "equal" in table and "mgda" in table and "left acc" in table
    (folder,) = tmp_path.glob("mgda-*")  # the settings' fingerprint ends the name
    results = json.loads((folder / "results.json").read_text())
    accuracy = results["test"]["metrics"]["left"]["accuracy"]
    assert 0.1 < accuracy <= 1.0  # better than chance (0.1) after one short epoch
    assert (folder / "checkpoints" / "last.pt").is_file()


def test_train_with_overrides_writes_run(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            "synthetic",
            f"output={tmp_path}/run",
            "schedule.epochs=2",
            "dataset.options.num_samples=600",
            "balancer.name=mgda",
            "gradients.level=parameter",
            "progress=false",
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 2 * -(-480 // 128)
    assert "y1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("schedul.epochs=3", "Did you mean 'schedule'"),
        ("schedule.epochs=two", "expected an integer"),
        ("balancer.name=pcgard", "Did you mean 'pcgrad'"),
        ("balancer.options.sed=1", "Did you mean 'seed'"),
        ("tasks.y3.weight=2", "unknown task in configuration 'y3'"),
        ("gradients.level=feature", "not one of"),
    ],
)
def test_bad_configuration_fails_with_closest_names(override: str, message: str, capsys) -> None:
    code = main(["train", "synthetic", override, "output=null", "dataset.options.num_samples=200"])
    assert code == 2
    assert message in capsys.readouterr().err


def test_list_commands(capsys) -> None:
    assert main(["list", "balancers"]) == 0
    out = capsys.readouterr().out
    assert "mgda" in out and "gramian" in out and "representation, parameter" in out
    assert main(["list", "models"]) == 0 and "shared_bottom" in capsys.readouterr().out
    assert main(["list", "datasets"]) == 0 and "multi_mnist" in capsys.readouterr().out


def test_config_requires_dataset() -> None:
    with pytest.raises(ConfigError, match="dataset"):
        ExperimentConfig.from_dict({})


def test_train_packaged_mmoe_config(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            "synthetic_mmoe",
            f"output={tmp_path}/run",
            "schedule.epochs=1",
            "dataset.options.num_samples=600",
            "balancer.name=pcgrad",
            "progress=false",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "y1" in printed and "y2" in printed
    assert "name: mmoe" in (tmp_path / "run" / "config.yaml").read_text()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == -(-480 // 128)


def test_overrides_may_follow_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """`polytask compare CONFIG --seeds 2 schedule.epochs=1` passes the override on, as the
    same override before the flags does; a stray word is still refused."""
    from polytask.cli import main as cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(cli, "compare_command", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["compare", "synthetic", "--seeds", "2", "schedule.epochs=1", "seed=3"]) == 0
    assert seen["overrides"] == ["schedule.epochs=1", "seed=3"] and seen["seeds"] == 2
    with pytest.raises(SystemExit):
        cli.main(["compare", "synthetic", "--seeds", "2", "stray"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "synthetc"], "unknown configuration 'synthetc'. Did you mean 'synthetic'"),
        (["train", "no_such_file.yaml"], "configuration file no_such_file.yaml does not exist"),
        (["classic", "schol"], "Did you mean 'school'"),
    ],
)
def test_a_misnamed_configuration_is_one_line(argv: list[str], message: str, capsys) -> None:
    """A configuration name or file that does not exist is the user's mistake: one line,
    exit status 2, never a traceback."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_optional_section_out_of_range_names_the_key_and_range(capsys) -> None:
    """An optional section (``search: null`` or a mapping) keeps its own range message."""
    assert main(["classic", "school", "search.cv=1"]) == 2
    assert "configuration key 'search.cv': 1 is out of range; it must be >= 2" in (
        capsys.readouterr().err
    )


def test_a_folder_named_like_a_packaged_configuration_does_not_hide_it(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A run folder called `synthetic` in the working directory: `polytask train synthetic`
    still means the packaged configuration (it said "configuration file synthetic does not
    exist")."""
    from polytask.cli.main import config_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic").mkdir()
    assert config_path("synthetic").name == "synthetic.yaml"
    assert config_path("synthetic").is_file()
