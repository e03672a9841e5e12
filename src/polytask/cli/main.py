"""The ``polytask`` command: ``demo``, ``train CONFIG [key=value ...]``, ``list WHAT``."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import polytask
from polytask.cli import demo, federate
from polytask.cli.errors import user_message
from polytask.cli.listing import blocks
from polytask.cli.table import format_table


def plots_hint() -> str:
    """How to get the report's plots (read from the plotting module when needed)."""
    from polytask.evaluation.plots import PLOTS_HINT

    return PLOTS_HINT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (built on demand, never global state)."""
    parser = argparse.ArgumentParser(
        prog="polytask", description="Multi-task learning for PyTorch."
    )
    parser.add_argument("--version", action="version", version=f"polytask {polytask.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(commands.add_parser("demo", help="train on MultiMNIST and print a table"))
    train = commands.add_parser("train", help="train from a YAML configuration")
    train.add_argument(
        "config",
        help="YAML file, or the name of a packaged configuration "
        f"({', '.join(packaged_configs())})",
    )
    train.add_argument("overrides", nargs="*", help="key=value overrides, e.g. balancer.name=mgda")
    train.add_argument(
        "--restart",
        action="store_true",
        help="remove the run in the output folder and start over (by default a run folder "
        "that holds a checkpoint is resumed, and refused if its settings differ)",
    )
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train on N processes of this machine (torchrun; each its slice of every batch, "
        "the same steps as one process; docs/distributed.md)",
    )
    diagnose = commands.add_parser(
        "diagnose", help="a short run that measures why tasks fight (conflict, speed, scale)"
    )
    diagnose.add_argument("config", help="YAML file or packaged configuration name")
    diagnose.add_argument("overrides", nargs="*", help="key=value overrides")
    diagnose.add_argument("--steps", type=int, default=200, help="training steps (200)")
    diagnose.add_argument(
        "--output", default=None, help="report folder (default runs/diagnose-<dataset>-<model>)"
    )
    compare = commands.add_parser(
        "compare", help="a grid of balancers x models x seeds with baselines, one report"
    )
    compare.add_argument("config", help="YAML file or packaged configuration name")
    compare.add_argument("overrides", nargs="*", help="key=value overrides")
    compare.add_argument(
        "--balancers", default=None, help="comma-separated (default: the config's)"
    )
    compare.add_argument("--models", default=None, help="comma-separated (default: the config's)")
    compare.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per method (3)")
    compare.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train each run on N processes of this machine, one run after another (torchrun)",
    )
    compare.add_argument("--workers", type=int, default=1, help="parallel processes (1)")
    compare.add_argument("--weight-sweep", type=int, default=0, help="add N fixed weightings")
    compare.add_argument("--no-baselines", action="store_true", help="skip single-task runs")
    compare.add_argument("--output", default="runs/compare", help="report folder")
    classic = commands.add_parser(
        "classic", help="a classic regularised MTL estimator (scikit-learn) on per-task data"
    )
    classic.add_argument(
        "config",
        help="YAML file, or the name of a packaged classic configuration "
        f"({', '.join(packaged_configs('classic'))})",
    )
    classic.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. method.name=robust"
    )
    federate.add_arguments(
        commands.add_parser(
            "federate", help="federated multi-task learning: clients that share no data"
        ),
        packaged_configs("federated"),
    )
    listing = commands.add_parser("list", help="list balancers, models or datasets")
    listing.add_argument(
        "what",
        choices=["balancers", "models", "datasets", "samplers", "configs", "classic", "federated"],
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def packaged_configs(group: str = "") -> list[str]:
    """Names of the configurations shipped in ``polytask/configs`` (``group``: a subfolder,
    ``classic`` for ``polytask classic``)."""
    folder = resources.files("polytask") / "configs" / group
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def config_path(name: str, group: str = "") -> Path:
    """A path as given, or the packaged configuration called ``name``."""
    path = Path(name)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return path  # a folder of that name (a run's output) does not hide a packaged one
    if name in packaged_configs(group):
        return Path(str(resources.files("polytask") / "configs" / group / f"{name}.yaml"))
    from polytask._registry import unknown_name_message
    from polytask.training.config import ConfigError

    raise ConfigError(unknown_name_message("configuration", name, packaged_configs(group)))


def _options(options: dict[str, object]) -> str:
    parts = []
    for key, default in options.items():
        if key in ("heads",):
            parts.append(key)
        elif default is inspect.Parameter.empty:
            parts.append(f"{key} (required)")
        else:
            parts.append(f"{key}={default!r}")
    return ", ".join(parts)


def list_command(what: str, as_json: bool) -> int:
    """Print a registry."""
    import polytask.balancers
    import polytask.data
    import polytask.models

    if what == "configs":
        rows: list[list[object]] = [[name] for name in packaged_configs()]
        print(format_table(["config"], rows))
        return 0
    if what == "classic":
        return list_classic(as_json)
    if what == "federated":
        return federate.list_algorithms(as_json, packaged_configs("federated"))
    if what == "balancers":
        described = polytask.balancers.describe()
        header = ["name", "needs", "levels", "roles", "summary", "options"]
        rows = [
            [
                r["name"],
                r["needs"],
                r["levels"],
                "yes" if r["roles"] else "no",
                r["summary"],
                _options(r["options"]),
            ]
            for r in described
        ]
    elif what == "samplers":
        from polytask.data.samplers import SAMPLERS

        described = [
            {"name": e.name, "summary": e.summary, "options": e.options()} for e in SAMPLERS
        ]
        header = ["name", "summary", "options"]
        rows = [[r["name"], r["summary"], _options(r["options"])] for r in described]
    else:
        module = polytask.models if what == "models" else polytask.data
        described = module.describe()
        key = "title" if what == "models" else "summary"
        header = ["name", "model" if what == "models" else "summary", "options"]
        rows = [[r["name"], r[key], _options(r["options"])] for r in described]
    if as_json:
        print(
            json.dumps(
                [
                    {**r, "options": {k: repr(v) for k, v in r["options"].items()}}
                    for r in described
                ],
                indent=2,
            )
        )
    else:
        print(blocks([_entry(what, header, row) for row in rows]))
    return 0


def list_classic(as_json: bool) -> int:
    """Print the classic estimators (``polytask classic``'s ``method.name`` values)."""
    from polytask.classic.registry import METHODS

    described = [
        {"name": name, "regressor": m.regressor, "classifier": m.classifier,
         "path_parameter": m.path_parameter}
        for name, m in METHODS.items()
    ]  # fmt: skip
    if as_json:
        print(json.dumps(described, indent=2))
        return 0
    header = ["name", "regressor", "classifier (logistic)", "path searches"]
    print(format_table(header, [list(row.values()) for row in described]))
    print(f"\nconfigurations for polytask classic: {', '.join(packaged_configs('classic'))}")
    return 0


def _entry(what: str, header: list[str], row: list[object]) -> tuple[str, str, str, str]:
    """A listing row as ``(name, facts, summary, options)`` for :func:`blocks`."""
    values = dict(zip(header, row, strict=True))
    facts = ""
    if what == "balancers":
        levels = values["levels"]
        facts = f"needs {values['needs']}" + (f"; levels: {levels}" if levels != "-" else "")
        facts += "; reads task roles" if values["roles"] == "yes" else ""
    summary = str(values.get("summary", values.get("model", "")))
    return str(values["name"]), facts, summary, str(values.get("options", ""))


def train_command(
    config: str, overrides: Sequence[str], restart: bool = False, nproc: int = 1
) -> int:
    """Train one configuration and print its test metrics (``nproc > 1``: on that many
    processes, :mod:`polytask.cli.launch`)."""
    from polytask.cli import launch
    from polytask.training.experiment import ExperimentConfig, run_experiment

    if nproc < 1:
        raise ValueError(f"--nproc must be 1 or more, got {nproc}")
    experiment = ExperimentConfig.from_yaml(config_path(config), list(overrides))
    if nproc > 1 and not launch.in_worker():
        clear = experiment.output_dir() if restart else None
        # progress=false: the ranks' output reaches the terminal line by line, through torchrun
        return launch.spawn(["train", config, *overrides, "progress=false"], nproc, clear)
    main_rank = launch.start_rank()
    adapt = None
    if launch.in_worker():
        from polytask.distributed.training import data_parallel

        adapt = data_parallel
    finished = False
    try:
        result = run_experiment(
            experiment,
            restart=restart and not launch.in_worker(),
            announce=(lambda m: print(f"polytask: {m}")) if main_rank else None,
            adapt=adapt,
        )
        finished = True
    finally:
        launch.finish_rank(finished)
    if not main_rank:
        return 0
    rows = [
        [task, metric, value, result.test["loss"][task]]
        for task, per in result.test["metrics"].items()
        for metric, value in (per.items() or [("-", float("nan"))])
    ]
    print(format_table(["task", "metric", "test value", "test loss"], rows))
    if result.scaled_tasks:
        print(
            f"note: {', '.join(result.scaled_tasks)} learn standardised targets: test loss in "
            "standard units, metrics in the targets' own units"
        )
    print(
        f"best epoch {result.best_epoch} (on validation); {result.steps} steps in "
        f"{result.seconds:.1f}s; run folder: {result.output}"
    )
    if result.report is not None:
        print(f"report: {result.report}")
    if result.missing_plots:
        print(f"note: the report has no plots; {plots_hint()}")
    return 0


def classic_command(config: str, overrides: Sequence[str]) -> int:
    """Fit a classic estimator and print its validation and test metrics."""
    from polytask.classic.experiment import ClassicConfig, run_classic

    settings = ClassicConfig.from_yaml(config_path(config, "classic"), list(overrides))
    result = run_classic(settings, say=lambda m: print(f"polytask: {m}", flush=True))
    splits = list(result.metrics)
    names = list(next(iter(result.metrics.values()))) if splits else []
    rows = [[name, *(result.metrics[s][name] for s in splits)] for name in names]
    print(format_table(["metric", *(f"{s} value" for s in splits)], rows))
    chosen = ", ".join(f"{k}={v:.4g}" for k, v in result.chosen.items())
    print(
        f"{type(result.estimator).__name__}"
        + (f" with {chosen} (chosen by cross-validation)" if chosen else "")
        + f"; fitted in {result.seconds:.1f}s; run folder: {result.output}"
    )
    return 0


def _names(text: str | None) -> list[str]:
    return [] if text is None else [n.strip() for n in text.split(",") if n.strip()]


def diagnose_command(args: argparse.Namespace) -> int:
    """Run the seesaw diagnosis of a configuration and write its report."""
    from polytask.evaluation.reports import diagnosis_report
    from polytask.studies.diagnose import diagnose_config
    from polytask.training.experiment import ExperimentConfig

    config = ExperimentConfig.from_yaml(config_path(args.config), list(args.overrides))
    print(
        f"diagnosing {config.dataset.name} / {config.model.name} with {config.balancer.name} "
        f"for {args.steps} steps at the {config.gradients.level} level ...",
        flush=True,
    )
    result = diagnose_config(config, steps=args.steps)
    print(result.to_markdown())
    folder = args.output or f"runs/diagnose-{config.dataset.name}-{config.model.name}"
    report = diagnosis_report(result)
    page = report.write(folder)[1]
    print(f"report: {page}")
    if report.missing_plots:
        print(f"note: the report has no plots; {plots_hint()}")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """Run a comparison grid and write its report."""
    from polytask.studies.compare import compare
    from polytask.training.experiment import ExperimentConfig

    config = ExperimentConfig.from_yaml(config_path(args.config), list(args.overrides))
    if args.seeds < 1:
        raise ValueError("--seeds must be >= 1")
    if args.nproc < 1:
        raise ValueError(f"--nproc must be 1 or more, got {args.nproc}")
    runner = None
    if args.nproc > 1:
        from polytask.cli.launch import nproc_runner

        runner = nproc_runner(args.nproc)
    comparison, page = compare(
        config,
        _names(args.balancers) or [config.balancer.name],
        _names(args.models),
        list(range(args.seeds)),
        workers=args.workers,
        output=args.output,
        baselines=not args.no_baselines,
        weight_sweep=args.weight_sweep,
        runner=runner,
    )
    columns = comparison.columns
    metrics = [
        [r.label, *(r.metric(t, m).format(4) for t, m in columns)] for r in comparison.results
    ]
    print(format_table(["method", *(f"{t}/{m}" for t, m in columns)], metrics))
    print(f"(test metrics, mean +- 95% CI over {args.seeds} seed(s))\n")
    ranks = comparison.ranks()
    rows = [[r.label, *comparison.headline(r, ranks)] for r in comparison.results]
    print(format_table(["method", "delta-m %", "mean rank", "ms/step"], rows))
    print(f"report: {page}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polytask`` command; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # --help and --version end here, before torch
    # key=value overrides may come anywhere on the line, also after the flags.
    misplaced = [a for a in extra if "=" in a and not a.startswith("-")]
    if misplaced and hasattr(args, "overrides"):
        args.overrides = [*args.overrides, *misplaced]
        extra = [a for a in extra if a not in misplaced]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with warnings.catch_warnings():  # restores how warnings show when the command ends
        if not args.debug:
            warnings.showwarning = _one_line_warning
        return _run(args)


def _one_line_warning(message: Warning | str, *_: object, **__: object) -> None:
    """A warning as one line on stderr, as an error is (``--debug`` keeps Python's form)."""
    print(f"polytask: warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; a user's mistake becomes one line and exit status 2."""
    try:
        if args.command == "demo":
            return demo.run(args)
        if args.command == "train":
            return train_command(args.config, args.overrides, args.restart, args.nproc)
        if args.command == "diagnose":
            return diagnose_command(args)
        if args.command == "compare":
            return compare_command(args)
        if args.command == "classic":
            return classic_command(args.config, args.overrides)
        if args.command == "federate":
            return federate.run(str(config_path(args.config, "federated")), args.overrides,
                                args.restart)  # fmt: skip
        return list_command(args.what, args.json)
    except KeyboardInterrupt as error:
        from polytask.training.interrupts import TrainingInterrupted

        if isinstance(error, TrainingInterrupted) and error.checkpoint:
            where = f"; checkpoint {error.checkpoint}: run the same command to resume"
            print(f"polytask: {error.args[0]}{where}", file=sys.stderr)
            return 128 + error.signum
        print("polytask: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        from polytask.cli.launch import lost_peer

        message = None if args.debug else (user_message(error) or lost_peer(error))
        if message is None:
            raise  # an internal bug (or --debug): the traceback must show
        print(f"polytask: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
