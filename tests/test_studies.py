"""Reports, the baseline cache, seeds, comparisons and the diagnose command, end to end on
small synthetic data."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from polytask.cli.main import main
from polytask.evaluation import delta_m, mean_rank, summarize
from polytask.evaluation import plots as plots_module
from polytask.evaluation.baselines import BaselineCache, baseline_spec
from polytask.evaluation.report import Report
from polytask.studies.compare import compare, sweep_weights
from polytask.studies.seeds import run_seeds
from polytask.training.config import to_dict
from polytask.training.experiment import ExperimentConfig, run_experiment


def small_config(tmp_path: Path, **changes: object) -> ExperimentConfig:
    config = ExperimentConfig.from_dict(
        {
            "dataset": {
                "name": "synthetic_correlation",
                "options": {"correlation": 0.5, "num_samples": 600, "dim": 10},
            },
            "model": {"name": "shared_bottom", "options": {"trunk_dims": [16], "head_dims": [8]}},
            "balancer": {"name": "mgda"},
            "schedule": {"epochs": 2, "batch_size": 64},
            "output": str(tmp_path / "run"),
            "progress": False,
            "log_every": 2,
            "baselines_dir": str(tmp_path / "baselines"),
        }
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def test_report_markdown_html_and_missing_matplotlib(tmp_path: Path, monkeypatch) -> None:
    report = Report("A <title>")
    report.heading("Numbers")
    report.table(["a", "b"], [[1, "<x>"]])
    report.figure(
        "line",
        "A line",
        lambda: plots_module.line_plot(
            [1, 2], {"t": [1.0, 2.0]}, title="t", xlabel="x", ylabel="y"
        ),
    )
    md, page = report.write(tmp_path)
    assert (tmp_path / "report-line.png").read_bytes()[:4] == b"\x89PNG"
    assert "![A line](report-line.png)" in md.read_text()
    html = page.read_text()
    assert "data:image/png;base64," in html and "&lt;x&gt;" in html and "A &lt;title&gt;" in html
    assert 'src="report-line.png"' not in html  # self-contained

    def no_matplotlib() -> None:
        raise plots_module.MissingPlottingError(plots_module.PLOTS_HINT)

    monkeypatch.setattr(plots_module, "_pyplot", no_matplotlib)
    bare = Report("bare")
    bare.figure(
        "line",
        "A line",
        lambda: plots_module.line_plot([1], {"t": [1.0]}, title="t", xlabel="x", ylabel="y"),
    )
    md, page = bare.write(tmp_path / "bare")
    assert bare.missing_plots
    assert "pip install 'polytask[plots]'" in md.read_text()
    assert not list((tmp_path / "bare").glob("*.png"))


def test_every_run_writes_a_report(tmp_path: Path) -> None:
    result = run_experiment(small_config(tmp_path))
    assert result.report == tmp_path / "run" / "report.html"
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Test metrics" in md and "No single-task baselines" in md
    for figure in ("loss", "weights", "conflict", "validation"):
        assert (tmp_path / "run" / f"report-{figure}.png").exists(), figure
    # The log holds the weights and gradient cosines the figures are drawn from.
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in log if r["kind"] == "train"]
    assert all(abs(sum(r["weights"].values()) - 1) < 1e-6 for r in train)  # MGDA: simplex
    assert all(abs(r["cosine"][0][0] - 1) < 1e-9 for r in train)


def test_baseline_cache_keys_and_tampering(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    cache = BaselineCache(tmp_path / "cache")
    spec = baseline_spec(to_dict(config), "y1")
    assert cache.get(spec) is None
    cache.put(spec, {"mse": 1.5})
    assert cache.get(spec) == {"mse": 1.5}
    # The balancer does not change a single-task baseline; data, model, budget and seed do.
    other_balancer = baseline_spec(to_dict(dataclasses.replace(config, output="x")), "y1")
    assert cache.get(other_balancer) == {"mse": 1.5}
    for changed in (
        dataclasses.replace(config, seed=1),
        dataclasses.replace(config, schedule=dataclasses.replace(config.schedule, epochs=3)),
        dataclasses.replace(config, model=dataclasses.replace(config.model, options={})),
    ):
        assert cache.get(baseline_spec(to_dict(changed), "y1")) is None
    path = cache.path(spec)
    entry = json.loads(path.read_text())
    entry["spec"]["seed"] = 99
    path.write_text(json.dumps(entry))
    with pytest.raises(ValueError, match="does not match its key"):
        cache.get(spec)


def test_seeds_in_parallel_processes_equal_sequential(tmp_path: Path) -> None:
    config = small_config(tmp_path, report=False)
    sequential = run_seeds(config, [0, 1], workers=1)
    heard: list[str] = []
    parallel = run_seeds(
        dataclasses.replace(config, output=str(tmp_path / "par")), [0, 1], workers=2,
        say=heard.append,
    )  # fmt: skip
    # Progress from the worker processes, with the overall count (issue 16, item 3).
    assert [line[:5] for line in heard] == ["[1/2]", "[2/2]"] and "mgda seed" in heard[0]
    assert [r.seed for r in sequential] == [0, 1]
    for a, b in zip(sequential, parallel, strict=True):
        assert a.test["metrics"] == b.test["metrics"]
    assert sequential[0].test["metrics"] != sequential[1].test["metrics"]
    assert Path(sequential[1].output or "").name == "seed1"


def test_compare_grid_baselines_and_report(tmp_path: Path) -> None:
    config = small_config(tmp_path, report=False)
    comparison, page = compare(
        config, ["equal", "mgda"], seeds=[0, 1], output=tmp_path / "cmp", weight_sweep=1,
        say=lambda _: None,
    )  # fmt: skip
    assert [r.label for r in comparison.results] == ["equal", "mgda", "fixed(0.50,0.50)"]
    assert comparison.baselines is not None and set(comparison.baselines) == {"y1", "y2"}
    # delta-m and its interval recomputed independently from the runs and the cache.
    cache = BaselineCache(tmp_path / "baselines")
    per_seed = [
        {
            t: cache.get(baseline_spec(to_dict(dataclasses.replace(config, seed=s)), t))
            for t in ("y1", "y2")
        }
        for s in (0, 1)
    ]
    mean_base = {
        t: {m: (per_seed[0][t][m] + per_seed[1][t][m]) / 2 for m in per_seed[0][t]}
        for t in ("y1", "y2")
    }
    mgda = comparison.results[1]
    values = [delta_m(r.test["metrics"], mean_base, comparison.directions) for r in mgda.runs]
    dm = comparison.delta_m(mgda)
    assert dm is not None and dm.mean == pytest.approx(summarize(values).mean)
    assert dm.half_width == pytest.approx(summarize(values).half_width)
    ranks = comparison.ranks()
    assert sum(ranks.values()) == pytest.approx(6.0)  # 3 methods: 1 + 2 + 3 per column
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert summary["methods"][1]["delta_m"]["mean"] == pytest.approx(dm.mean)
    assert page == tmp_path / "cmp" / "report.html"
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert (
        "Pareto front" in md
        and "delta-m %" in md
        and (tmp_path / "cmp" / "report-pareto.png").exists()
    )
    # The baselines are cached: a second comparison trains none, and a plain run's report
    # now has delta-m.
    messages: list[str] = []
    compare(config, ["equal"], seeds=[0, 1], output=tmp_path / "cmp2", say=messages.append)
    assert not any("baseline run" in m for m in messages)
    run_experiment(
        dataclasses.replace(config, report=True, balancer=dataclasses.replace(config.balancer))
    )
    assert "delta-m = " in (tmp_path / "run" / "report.md").read_text()
    assert mean_rank({"a": {"x": 1.0}}, {"x": True}) == {"a": 1.0}


def test_sweep_weights_on_the_simplex() -> None:
    assert sweep_weights(2, 3) == [[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]]
    three = sweep_weights(3, 4, seed=1)
    assert len(three) == 4 and all(abs(sum(w) - 1) < 1e-12 and min(w) > 0 for w in three)


def test_cli_diagnose_and_compare(tmp_path: Path, capsys) -> None:
    code = main(["diagnose", "synthetic", "dataset.options.num_samples=600", "--steps", "20",
                 "--output", str(tmp_path / "diag")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "| gradient conflict |" in out and "report:" in out
    assert (tmp_path / "diag" / "report-cosine.png").exists()
    code = main(["compare", "synthetic", "dataset.options.num_samples=600", "schedule.epochs=1",
                 f"baselines_dir={tmp_path / 'b'}", "--balancers", "equal,pcgrad", "--seeds", "2",
                 "--output", str(tmp_path / "cmp")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "pcgrad" in out and "mean rank" in out
    assert main(["compare", "synthetic", "--balancers", "pcgard"]) == 2
    assert "Did you mean 'pcgrad'" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """<script>window.addEventListener('load', () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', broken);
});</script></body>"""


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (make test installs it with apt when it can)"
)
def test_html_report_opens_in_a_real_browser_without_missing_images(tmp_path: Path) -> None:
    run_experiment(small_config(tmp_path))
    page = (tmp_path / "run" / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE))
    assert CHROMIUM is not None
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert 'data-broken="0"' in dom, dom[:500]
    assert 'data-images="6"' in dom  # loss, weights, conflict, validation, metrics, lr
