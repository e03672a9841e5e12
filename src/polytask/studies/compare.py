"""``polytask compare``: a grid of models x balancers x seeds, one report."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polytask.data import load as load_data
from polytask.data.splits import DataSplits
from polytask.evaluation import plots
from polytask.evaluation.measures import Directions, delta_m
from polytask.evaluation.pareto import pareto_front
from polytask.evaluation.report import Report
from polytask.evaluation.stats import Summary, mean_rank, summarize
from polytask.studies.baselines import mean_baselines, single_task_baselines
from polytask.studies.seeds import Runner, SeedRun, run_configs, with_seed
from polytask.tasks.taskset import TaskSet
from polytask.training.experiment import (
    ExperimentConfig,
    NamedConfig,
    apply_task_overrides,
    select_tasks,
)


@dataclass
class MethodResult:
    """All seeds of one (model, balancer) pair."""

    label: str
    model: str
    balancer: NamedConfig
    runs: list[SeedRun]

    def metric(self, task: str, metric: str) -> Summary:
        """Mean, std and confidence interval of a test metric over the seeds."""
        return summarize([r.test["metrics"][task][metric] for r in self.runs])

    def step_ms(self) -> float:
        """Mean time per step over the seeds, in milliseconds."""
        return sum(r.step_ms for r in self.runs) / len(self.runs)


@dataclass
class Comparison:
    """The outcome of :func:`compare`."""

    tasks: list[str]
    directions: Directions
    results: list[MethodResult]
    baselines: dict[str, dict[str, float]] | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)

    def delta_m(self, result: MethodResult) -> Summary | None:
        """delta-m of each seed against the mean single-task baselines, summarised."""
        if self.baselines is None:
            return None
        values = [delta_m(r.test["metrics"], self.baselines, self.directions) for r in result.runs]
        return summarize(values)

    def headline(self, result: MethodResult, ranks: Mapping[str, float]) -> list[str]:
        """``[delta-m +- CI, mean rank, ms/step]`` of one method, as printed."""
        dm = self.delta_m(result)
        return [
            "n/a" if dm is None else dm.format(2),
            f"{ranks[result.label]:.2f}",
            f"{result.step_ms():.1f}",
        ]

    def ranks(self) -> dict[str, float]:
        """Mean rank of each method over all task metrics (means over seeds)."""
        scores = {
            r.label: {f"{t}/{m}": r.metric(t, m).mean for t, m in self.columns}
            for r in self.results
        }
        directions = {f"{t}/{m}": self.directions[t][m] for t, m in self.columns}
        return mean_rank(scores, directions)

    def front_methods(self) -> list[int]:
        """Indices of the methods not dominated on the means over seeds of the tasks'
        primary metrics (the first metric of each task). The front is a statement about
        methods, so it is taken on their means, not across single seeds."""
        primary = self.primary_columns()
        points = [[r.metric(t, m).mean for t, m in primary] for r in self.results]
        return pareto_front(points, [self.directions[t][m] for t, m in primary])

    def primary_columns(self) -> list[tuple[str, str]]:
        """``(task, metric)`` of each task's primary metric."""
        return [(t, self.primary_metric(t)) for t in self.tasks]

    def primary_metric(self, task: str) -> str:
        """The task's first metric (the one model selection and the Pareto front use)."""
        return next(m for t, m in self.columns if t == task)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        ranks = self.ranks()
        rows = []
        for r in self.results:
            dm = self.delta_m(r)
            rows.append(
                {
                    "method": r.label,
                    "model": r.model,
                    "balancer": dataclasses.asdict(r.balancer),
                    "seeds": [run.seed for run in r.runs],
                    "metrics": {
                        f"{t}/{m}": dataclasses.asdict(r.metric(t, m)) for t, m in self.columns
                    },
                    "delta_m": None if dm is None else dataclasses.asdict(dm),
                    "mean_rank": ranks[r.label],
                    "step_ms": r.step_ms(),
                    "runs": [dataclasses.asdict(run) for run in r.runs],
                }
            )
        return {"tasks": self.tasks, "baselines": self.baselines, "methods": rows}


def sweep_weights(num_tasks: int, count: int, seed: int = 0) -> list[list[float]]:
    """``count`` fixed weight vectors on the simplex: evenly spaced for two tasks
    (``(i/(count+1), 1 - i/(count+1))``), Dirichlet(1) draws for more."""
    if count < 1:
        return []
    if num_tasks == 2:
        return [[i / (count + 1), 1 - i / (count + 1)] for i in range(1, count + 1)]
    rng = random.Random(seed)
    vectors = []
    for _ in range(count):
        draws = [rng.expovariate(1.0) for _ in range(num_tasks)]
        vectors.append([d / sum(draws) for d in draws])
    return vectors


def compare(
    config: ExperimentConfig,
    balancers: Sequence[str],
    models: Sequence[str] = (),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    workers: int = 1,
    output: str | Path = "runs/compare",
    baselines: bool = True,
    weight_sweep: int = 0,
    say: Callable[[str], None] = print,
    runner: Runner | None = None,
) -> tuple[Comparison, Path]:
    """Train every (model, balancer) over ``seeds``, the single-task baselines (cached), and
    write one report (``report.md``/``.html``, ``comparison.json``) into ``output``.

    Models and balancers other than the configuration's own get their default options;
    ``weight_sweep`` adds that many ``fixed`` weightings spread over the simplex (a Pareto
    front traced by weights). ``runner`` trains each method's runs another way (see
    :func:`~polytask.studies.seeds.run_configs`); the single-task baselines run as usual.
    """
    output = Path(output)
    models = list(models) or [config.model.name]
    methods: list[NamedConfig] = [
        config.balancer if b == config.balancer.name else NamedConfig(b) for b in balancers
    ]
    loaded = load_data(config.dataset.name, **config.dataset.options)
    assert isinstance(loaded, DataSplits)
    tasks = select_tasks(apply_task_overrides(loaded.tasks, config.tasks), config.only_tasks)
    names = [t.name for t in tasks]
    directions = TaskSet(tasks).directions()
    methods += [
        NamedConfig("fixed", {"weights": w}) for w in sweep_weights(len(names), weight_sweep)
    ]
    if not methods:
        raise ValueError("give at least one balancer (or a weight sweep)")
    plan: list[tuple[str, str, NamedConfig]] = []
    configs: list[ExperimentConfig] = []
    for model in models:
        model_config = config.model if model == config.model.name else NamedConfig(model)
        for method in methods:
            tag = method.name
            if method.name == "fixed" and "weights" in method.options:
                tag = "fixed(" + ",".join(f"{w:.2f}" for w in method.options["weights"]) + ")"
            label = tag if len(models) == 1 else f"{model} / {tag}"
            plan.append((label, model, method))
            # The settings' fingerprint in the name: a rerun with other settings gets new
            # folders (the same settings resume their runs).
            folder = output / "runs" / (f"{model}-{tag}".replace("/", "_") + "-{fingerprint}")
            base = dataclasses.replace(
                config, model=model_config, balancer=method, output=str(folder), progress=False
            )
            configs += [with_seed(base, s) for s in seeds]
    say(
        f"training {len(configs)} run(s): {len(models)} model(s) x {len(methods)} "
        f"method(s) x {len(seeds)} seed(s)"
    )
    runs = run_configs(configs, workers, say=say, runner=runner)
    results = [
        MethodResult(label, model, method, runs[i * len(seeds) : (i + 1) * len(seeds)])
        for i, (label, model, method) in enumerate(plan)
    ]
    mean_base = None
    if baselines:
        if len(models) > 1:
            say("baselines: the first model's single-task runs serve as the reference")
        reference = dataclasses.replace(
            config, model=config.model if models[0] == config.model.name else NamedConfig(models[0])
        )
        table = single_task_baselines(reference, names, seeds, workers=workers, say=say)
        mean_base = mean_baselines(table)
    columns = [(t, m) for t in names for m in directions[t]]
    if not columns:
        raise ValueError("the tasks have no metrics to compare; give each task metrics")
    comparison = Comparison(names, directions, results, mean_base, columns)
    report = comparison_report(comparison, config)
    output.mkdir(parents=True, exist_ok=True)
    (output / "comparison.json").write_text(json.dumps(comparison.to_dict(), indent=2, default=str))
    page = report.write(output)[1]
    if report.missing_plots:
        say(f"note: the report has no plots; {plots.PLOTS_HINT}")
    return comparison, page


def comparison_report(comparison: Comparison, config: ExperimentConfig) -> Report:
    """Table (mean +- 95% CI per task metric, delta-m, mean rank, step time) and the Pareto
    plot of every run."""
    report = Report(f"Comparison on {config.dataset.name}")
    seeds = len(comparison.results[0].runs)
    report.text(
        f"{len(comparison.results)} method(s), {seeds} seed(s) each; mean +- half-width of the "
        "95% t confidence interval over seeds; model selected on validation, test evaluated "
        "once per run. delta-m (%, lower is better) is against the mean single-task baseline."
    )
    ranks = comparison.ranks()
    headers = [
        "method",
        *[f"{t}/{m}" for t, m in comparison.columns],
        "delta-m %",
        "mean rank",
        "ms/step",
    ]
    rows = [
        [
            r.label,
            *[r.metric(t, m).format() for t, m in comparison.columns],
            *comparison.headline(r, ranks),
        ]
        for r in comparison.results
    ]
    report.table(headers, rows)
    if comparison.baselines is not None:
        base_rows = [[t, m, f"{comparison.baselines[t][m]:.4f}"] for t, m in comparison.columns]
        report.heading("Single-task baselines")
        report.table(["task", "metric", "mean over seeds"], base_rows)
    else:
        report.text("No single-task baselines were trained (--no-baselines): no delta-m.")
    front = comparison.front_methods()
    report.heading("Pareto front")
    report.text(
        f"{len(front)} of {len(comparison.results)} methods are not dominated on the means over "
        "seeds of the tasks' primary metrics: "
        + ", ".join(comparison.results[i].label for i in front)
        + "."
    )
    primary = comparison.primary_columns()
    if len(primary) >= 2:
        (t1, m1), (t2, m2) = primary[0], primary[1]
        if len(primary) > 2:
            report.text("The plot shows the first two tasks; the front is over all tasks.")
        methods = [
            plots.MethodPoints(
                r.label,
                (r.metric(t1, m1).mean, r.metric(t2, m2).mean),
                (r.metric(t1, m1).half_width, r.metric(t2, m2).half_width),
                [(run.test["metrics"][t1][m1], run.test["metrics"][t2][m2]) for run in r.runs],
            )
            for r in comparison.results
        ]
        report.figure(
            "pareto",
            "Each method's mean over seeds (bars: 95% CI; faint: single seeds), the front "
            "of the means joined",
            lambda: plots.pareto_plot(
                methods, front, xlabel=f"{t1} {m1}", ylabel=f"{t2} {m2}", title="Pareto front"
            ),
        )
    return report
