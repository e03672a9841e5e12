"""The README's Python snippets run verbatim."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_own_loop_snippet_runs_and_learns() -> None:
    (snippet,) = [b for b in python_blocks() if "for x, y in loader" in b]
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    import torch

    model, data, tasks = scope["model"], scope["data"], scope["tasks"]
    with torch.no_grad():
        x, y = data.test[:]
        trained = tasks.losses(model(x), y).detached()
    # Better than predicting the mean on every task.
    for i, name in enumerate(tasks.names):
        assert float(trained[i]) < float(y[name].var()), name


def test_trainer_snippet_runs_after_the_own_loop(tmp_path, monkeypatch) -> None:
    """The Trainer snippet continues the own-loop one; both run verbatim (in a temporary
    folder, since it writes runs/readme)."""
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    (loop,) = [b for b in blocks if "for x, y in loader" in b]
    (trainer,) = [b for b in blocks if "load_run(" in b]
    scope: dict = {}
    exec(compile(loop, "README.md", "exec"), scope)
    exec(compile(trainer, "README.md", "exec"), scope)
    predictions = scope["predictions"]
    assert set(predictions) == {"y1", "y2"}
    assert (tmp_path / "runs" / "readme" / "metrics.csv").is_file()


def test_readme_documents_every_configuration_key() -> None:
    """The README's key table names every field of the experiment's configuration (a nested
    configuration's fields as dotted keys), so no key a user may set goes undocumented."""
    import dataclasses
    import typing

    from polytask.training.experiment_config import ExperimentConfig, TaskOverride

    text = README.read_text()
    table = text[text.index("| key | default | meaning |") :]
    table = table[: table.index("\n\n")]

    def dataclass_of(hint: object) -> type | None:
        options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        found = options[0]
        return found if isinstance(found, type) and dataclasses.is_dataclass(found) else None

    expected = []
    for name, hint in typing.get_type_hints(ExperimentConfig).items():
        inner = dataclass_of(hint)
        if inner is None:
            expected.append(name)
        else:
            expected += [f"{name}.{f.name}" for f in dataclasses.fields(inner)]
    expected = [k for k in expected if k != "tasks"]
    expected += [f"tasks.<task>.{f.name}" for f in dataclasses.fields(TaskOverride)]
    missing = [
        k for k in expected
        if f"`{k}`" not in table and f"`.{k.rsplit('.', 1)[-1]}`" not in table
    ]  # fmt: skip
    assert not missing, missing


def test_classic_snippet_runs_on_school(capsys) -> None:
    """The classic snippet, verbatim, on the local School copy."""
    import pytest

    from .conftest import DATA_ROOT, have_data

    pytest.importorskip("sklearn")
    if not have_data("school"):
        pytest.skip("local school copy not found")
    (snippet,) = [b for b in python_blocks() if "ClassicMTLCV" in b]
    snippet = snippet.replace('load("school")', f'load("school", root={str(DATA_ROOT)!r})')
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["model"].best_estimator_.coef_.shape == (139, 28)
    assert "(139, 28)" in capsys.readouterr().out
