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
