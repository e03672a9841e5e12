"""``polytask --help`` and ``--version`` answer at once: they load neither torch nor scipy
(issue 16, item 4), and ``import polytask`` is light until a part is used."""

from __future__ import annotations

import subprocess
import sys

import polytask


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return set(out.stdout.split())


def test_help_and_version_do_not_load_torch() -> None:
    code = (
        "from polytask.cli.main import main\n"
        "for argv in (['--help'], ['--version'], ['train', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass"
    )
    loaded = _modules_after(code)
    assert "polytask.cli.main" in loaded
    assert "torch" not in loaded and "scipy" not in loaded


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "polytask.cli.main", "--version"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == f"polytask {polytask.__version__}"


def test_import_polytask_is_lazy_and_complete() -> None:
    assert "torch" not in _modules_after("import polytask")
    for name in polytask.__all__:
        assert getattr(polytask, name) is not None, name
    assert "balancers" in dir(polytask)


def test_list_fits_a_terminal_without_markup(capsys) -> None:
    from polytask.cli.listing import first_sentence, plain_text
    from polytask.cli.main import main

    for what in ("balancers", "models", "datasets", "samplers", "configs"):
        assert main(["list", what]) == 0
        out = capsys.readouterr().out
        assert out.strip(), what
        assert max(len(line) for line in out.splitlines()) <= 120, what
        assert "``" not in out and ":class:" not in out, what
    assert first_sentence("Weights, i.e. w = 1/T. More.") == "Weights, i.e. w = 1/T."
    assert plain_text("see :class:`~polytask.models.FeatureSchema` and ``x``") == (
        "see FeatureSchema and x"
    )


def test_user_mistakes_get_one_line_not_a_traceback(tmp_path, capsys) -> None:
    import pytest
    import torch

    from polytask.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: {name: synthetic_correlation\nmodel: x\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 2" in err and "Traceback" not in err
    small = ["output=null", "dataset.options.num_samples=200", "progress=false"]
    assert main(["train", "synthetic", "device=tpu", *small]) == 2
    assert "'tpu' is not a device" in capsys.readouterr().err
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["train", "synthetic", "device=cuda", *small]) == 2
    assert "device=cpu" in capsys.readouterr().err
