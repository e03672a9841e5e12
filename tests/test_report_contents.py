"""What the reports show a person (issue 16, items 8-10): markdown rendered as HTML (tables
are tables, code is code), registry names, the resolved configuration, validation metric
curves, the learning rate, and a training curve for short runs too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from polytask.evaluation.report import Report
from polytask.training.experiment import run_experiment

from .test_studies import small_config


def test_text_blocks_render_markdown_safely() -> None:
    report = Report("t")
    report.text("| cause | present |\n|---|---|\n| conflict | `no` |\n\n<script>alert(1)</script>")
    page = report.html()
    assert "<table>" in page and "<td><code>no</code></td>" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "| cause |" not in page


def test_run_report_names_the_balancer_and_shows_config_metrics_and_lr(tmp_path: Path) -> None:
    config = small_config(tmp_path, log_every=1000)  # no step window completes: short run
    run_experiment(config)
    md = (tmp_path / "run" / "report.md").read_text()
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Balancer mgda" in md and "MGDA" not in md.split("\n")[2]
    assert "## Configuration" in md and "balancer:" in md and "name: mgda" in md
    assert "<pre><code" in page and "`" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    for figure in ("report-loss.png", "report-validation-metrics.png", "report-lr.png"):
        assert (tmp_path / "run" / figure).is_file(), figure


def test_overlapping_lines_stay_visible() -> None:
    """Equal weighting draws every task's weight on the same line: each series gets its
    own line style and markers, so none hides another."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from polytask.evaluation import plots

    styles = plots.series_styles(4)
    assert len({(s["linestyle"], s["marker"]) for s in styles}) == 4


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_reports_tables_are_tables_in_a_browser(tmp_path: Path) -> None:
    """Opened in headless chromium: the run report's tables and the diagnosis summary are
    HTML tables, and no markdown table syntax is left as text."""
    from polytask.cli.main import main

    run_experiment(small_config(tmp_path))
    assert main(["diagnose", "synthetic", "dataset.options.num_samples=300", "--steps", "8",
                 "--output", str(tmp_path / "diag")]) == 0  # fmt: skip
    pages = {tmp_path / "run" / "report.html": 1, tmp_path / "diag" / "report.html": 2}
    for page, tables in pages.items():
        assert CHROMIUM is not None
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        assert dom.count("<table>") >= tables, page
        assert "|---|" not in dom and "| cause |" not in dom


def test_diagnosis_says_how_each_cause_is_decided() -> None:
    """A 'no' beside 'negative on 83% of steps' reads as a contradiction unless the rule is
    stated: the report states each cause's rule with its thresholds."""
    import torch

    from polytask.evaluation.diagnosis import Recording, Thresholds, diagnose

    recording = Recording(["a", "b"], "representation")
    g = torch.tensor([[1.0, -0.05], [-0.05, 1.0]])  # slightly negative: not a conflict
    for step in range(10):
        recording.add(torch.tensor([1.0, 1.0]) / (step + 1), g)
    text = diagnose(recording, Thresholds()).to_markdown()
    assert "| gradient conflict | no |" in text and "negative on 100% of steps" in text
    assert "gradient conflict: present when a pair's mean cosine is at most -0.1" in text
    assert "different convergence speeds: present when" in text
    assert "different loss scales: present when" in text


def test_compare_prints_progress_per_task_metrics_and_a_front_of_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, items 3, 7, 11: a line per finished run with the overall count, the
    per-task metrics (mean +- CI) in the terminal, and the Pareto front over method means
    (the text counts methods, not runs)."""
    from polytask.cli.main import main

    argv = ["compare", "synthetic", "--balancers", "equal,pcgrad", "--seeds", "2",
            "--no-baselines", "--output", str(tmp_path / "cmp"),
            "dataset.options.num_samples=300", "schedule.epochs=1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[1/4] shared_bottom / equal seed 0" in out and "[4/4]" in out
    assert "y1/mse" in out and "+-" in out  # the per-task table, mean +- CI
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert re.search(r"\d of 2 methods are not dominated", md), md


def test_front_is_over_method_means() -> None:
    """Two methods whose seeds scatter: the front is taken on the means over seeds."""
    from polytask.evaluation.stats import summarize
    from polytask.studies.compare import Comparison, MethodResult
    from polytask.studies.seeds import SeedRun
    from polytask.training.experiment import NamedConfig

    def method(label: str, values: list[tuple[float, float]]) -> MethodResult:
        runs = [SeedRun(i, {"metrics": {"a": {"mse": x}, "b": {"mse": y}}}, 1.0, 1, None)
                for i, (x, y) in enumerate(values)]  # fmt: skip
        return MethodResult(label, "m", NamedConfig(label), runs)

    # p's seeds: one dominates everything, one is dominated; its mean (1.5, 1.5) is
    # dominated by q's mean (1.0, 1.0).
    p, q = method("p", [(0.5, 0.5), (2.5, 2.5)]), method("q", [(1.0, 1.0), (1.0, 1.0)])
    comparison = Comparison(["a", "b"], {"a": {"mse": False}, "b": {"mse": False}}, [p, q],
                            columns=[("a", "mse"), ("b", "mse")])  # fmt: skip
    assert comparison.front_methods() == [1]
    assert summarize([0.5, 2.5]).mean == 1.5
