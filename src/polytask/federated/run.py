"""Running a configured federated experiment (``polytask federate``): the rounds on the
chosen engine, a checkpoint after every round (resumed when the command runs again with
the same settings), each client scored on its own validation and test rows, and the run
folder's ``results.json`` and ``report.md``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polytask.federated.checkpoint import ClientStates, load_server, restored_run, save_server
from polytask.federated.clients import FederatedData, federated_data
from polytask.federated.evaluation import ClientScores, evaluate_clients
from polytask.federated.experiment import FederatedConfig, algorithm_from
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import FederatedAlgorithm
from polytask.federated.report import write_report
from polytask.federated.rounds import FederatedRun, run_rounds
from polytask.training.run_folder import (
    RunFolder,
    RunMismatchError,
    clear_run,
    mismatch_message,
    settings_differences,
)


@dataclass
class FederatedOutcome:
    """A finished run: the per-client scores on each held-out split, the run itself, the
    rounds this call ran (0 when the folder held the finished run), seconds, the folder."""

    scores: dict[str, ClientScores]
    run: FederatedRun
    names: list[str]
    rounds_run: int
    seconds: float
    output: Path


@dataclass
class Prepared:
    """A configuration made ready to run: the clients' data, the algorithm and the setup
    every client shares."""

    data: FederatedData
    algorithm: FederatedAlgorithm
    setup: ClientSetup


def prepare(config: FederatedConfig) -> Prepared:
    """Load the configured data as clients, build the algorithm and the shared setup (what
    :func:`run_federated` and the Flower app components both start from)."""
    data = federated_data(config)
    setup = ClientSetup(data.make_model, data.tasks, config.local, config.seed)
    return Prepared(data, algorithm_from(config), setup)


def run_federated(
    config: FederatedConfig, restart: bool = False, say: Callable[[str], None] = print
) -> FederatedOutcome:
    """Run ``config``: from its checkpoint when its folder holds one with the same settings
    (another setting is an error naming the differences; ``restart`` starts over)."""
    ready = prepare(config)
    data, algorithm, setup = ready.data, ready.algorithm, ready.setup
    folder = config.output_dir()
    checkpoints = folder / "checkpoints"
    with RunFolder(folder):
        if restart:
            clear_run(folder)
        start = resume_point(config, len(data.train), say)
        done_before = 0 if start is None else len(start.history)
        say(f"{config.algorithm.name} on {len(data.train)} clients of {config.dataset.name}, "
            f"{config.rounds} round(s), engine {config.engine}")  # fmt: skip
        started = time.perf_counter()
        job = EngineJob(algorithm, data, setup, config, start, checkpoints)
        run = ENGINES[config.engine](job)
        seconds = time.perf_counter() - started
        scores = {
            split: evaluate_clients(algorithm, run, data.train, getattr(data, split), setup)
            for split in ("val", "test")
        }
        outcome = FederatedOutcome(scores, run, data.names, len(run.history) - done_before,
                                   seconds, folder)  # fmt: skip
        write_results(outcome, config)
    return outcome


def resume_point(
    config: FederatedConfig, num_clients: int, say: Callable[[str], None] = print
) -> FederatedRun | None:
    """The saved run in ``config``'s folder to go on from, or ``None``; a run with other
    settings, or with more rounds than asked for, is an error naming the fix."""
    folder = config.output_dir()
    checkpoints = folder / "checkpoints"
    start = restored_run(checkpoints, num_clients)
    if start is None:
        return None
    saved = load_server(checkpoints)[2]
    current = json.loads(json.dumps(config.settings(), default=str))
    differences = settings_differences(saved, current)
    if differences:
        fix = ("polytask federate", "run_federated(config, restart=True)")
        raise RunMismatchError(mismatch_message(folder, differences, *fix))
    if len(start.history) > config.rounds:
        raise RunMismatchError(
            f"run folder {folder} holds {len(start.history)} rounds, more than the "
            f"{config.rounds} asked for: ask for rounds={len(start.history)} or more, "
            "or start over with --restart"
        )
    say(f"resuming after round {len(start.history)} of {config.rounds} ({folder})")
    return start


def checkpoint_writer(
    checkpoints: Path, config: FederatedConfig, clients: ClientStates | None
) -> Callable[[FederatedRun], None]:
    """After a round: each client that trained in it keeps its state (when ``clients`` is
    given: one process holds them all), then the server's part, which marks the round
    done."""

    def write(run: FederatedRun) -> None:
        done = len(run.history)
        if clients is not None:
            for k in run.history[-1]:
                clients.save(k, done, run.private[k])
        save_server(checkpoints, run, config.settings())

    return write


@dataclass
class EngineJob:
    """What an engine runs: the algorithm, the clients' data, the shared setup, the
    configuration, the saved run to go on from (or ``None``) and the checkpoint folder."""

    algorithm: FederatedAlgorithm
    data: FederatedData
    setup: ClientSetup
    config: FederatedConfig
    start: FederatedRun | None
    checkpoints: Path


def core_engine(job: EngineJob) -> FederatedRun:
    """The rounds in this process, engine-free (:func:`run_rounds`)."""
    checkpoints, config = job.checkpoints, job.config
    write = checkpoint_writer(checkpoints, config, ClientStates(checkpoints / "clients"))
    return run_rounds(job.algorithm, job.data.train, job.setup, config.rounds,
                      config.participation, start=job.start, after_round=write)  # fmt: skip


def flower_engine(job: EngineJob) -> FederatedRun:
    """Flower's ``ServerApp`` and ``ClientApp``, in this process (no Ray) or on Flower's
    simulation engine; the clients write their own states."""
    from polytask.federated.flower import FlowerServer, client_source, make_client_app

    algorithm, data, setup, config = job.algorithm, job.data, job.setup, job.config
    start, checkpoints = job.start, job.checkpoints

    server = FlowerServer(algorithm, setup, config.rounds, len(data.train),
                          config.participation, evaluate_rounds=(), start=start,
                          after_round=checkpoint_writer(checkpoints, config, None))  # fmt: skip
    client_app = make_client_app(algorithm, setup, client_source(data.train),
                                 state_dir=checkpoints / "clients")  # fmt: skip
    if config.engine == "simulation":
        from polytask.federated.flower.simulation import run_simulation

        run_simulation(server.app(), client_app, len(data.train))
    else:
        from polytask.federated.flower import run_in_process

        run_in_process(server.app(), client_app, len(data.train))
    finished = restored_run(checkpoints, len(data.train))
    assert finished is not None and len(finished.history) == config.rounds
    return finished


ENGINES: dict[str, Any] = {"core": core_engine, "flower": flower_engine,
                           "simulation": flower_engine}  # fmt: skip


def write_results(outcome: FederatedOutcome, config: FederatedConfig) -> None:
    """``results.json`` (settings, per-client scores, summaries, the training history) and
    the report (``report.md`` with its figures, ``report.html``) in the run folder."""
    from polytask.training.config import to_dict

    summaries = {
        split: {task: scores.summary(task) for task in scores.losses[0]}
        for split, scores in outcome.scores.items()
    }
    results = {
        "config": to_dict(config),
        "clients": outcome.names,
        "summary": summaries,
        "per_client": {
            split: {"losses": s.losses, "examples": s.examples}
            for split, s in outcome.scores.items()
        },
        "history": [{str(k): v for k, v in h.items()} for h in outcome.run.history],
        "seconds": outcome.seconds,
    }
    (outcome.output / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_report(outcome.output, config, outcome.names, outcome.scores, outcome.run.history)
