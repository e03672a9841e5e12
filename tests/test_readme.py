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
