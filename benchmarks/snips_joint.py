"""SNIPS joint NLU: intent accuracy, slot span F1 and sentence accuracy of from-scratch
polytask models, single-task and joint, beside the published numbers on the same split.

Protocol: SNIPS as Goo et al. 2018 split it (13,084 / 700 / 700 sentences), the packaged
``snips_bilstm`` configuration (BiLSTM encoder trained from scratch, 1 x 128 per direction,
embeddings 128, Adam 1e-3, batch 32, 20 epochs, the epoch chosen on validation slot span F1)
or ``snips`` (the transformer; ``--model transformer``). Runs: intent alone (chosen on
validation intent accuracy), slots alone, joint with equal weights, and joint with three
balancers at the representation level: uncertainty weighting (a loss weighting), PCGrad (a
gradient method) and MGDA (Pareto-directed). With two tasks UPGrad projects each gradient
onto the dual cone exactly as PCGrad does, so it trains the same model and is not run twice.
Last, joint with equal weights and a linear-chain CRF over the slots (the BiLSTM-CRF).
5 seeds each (``--full``), mean +- 95% CI. Sentence accuracy is the joint frame accuracy of
Goo et al.: the intent and every slot of a sentence right; a single-task run has none.

Published on this split (Goo et al. 2018, Table 2; intent accuracy / slot F1 / sentence
accuracy): Joint Seq. (Hakkani-Tur et al. 2016, a joint BiLSTM) 96.9 / 87.3 / 73.2, Attention
BiRNN (Liu and Lane 2016) 96.7 / 87.8 / 74.1, Slot-Gated (full attention) 97.0 / 88.8 / 75.5.
Pretrained encoders (Joint BERT, Chen et al. 2019: 98.6 intent accuracy, 97.0 slot F1) are
not comparable with a from-scratch encoder.

    python benchmarks/snips_joint.py            # quick: 1 seed, 2 epochs
    python benchmarks/snips_joint.py --full     # 5 seeds, 20 epochs (results committed)
    python benchmarks/snips_joint.py --full --resume   # go on from the runs already written
    python benchmarks/snips_joint.py --full --table    # the table again from the saved runs
    python benchmarks/snips_joint.py --full --table --seeds 4   # ... over seeds 0-3 only
Needs the local SNIPS copy (``POLYTASK_DATA``). Results: benchmarks/results/snips_joint_*, written
again after every run, so a stopped benchmark loses at most the run in progress.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import torch

import polytask
import polytask.data
from common import markdown_table, meta, results_dir, write_results
from polytask.evaluation.stats import summarize
from polytask.tasks.spans import SpanF1

RUNS: dict[str, dict[str, Any]] = {
    "intent alone": {"only_tasks": ["intent"], "schedule": {"monitor": "intent/accuracy"}},
    "slots alone": {"only_tasks": ["slots"]},
    "joint, equal": {},
    "joint, uncertainty": {"balancer": {"name": "uncertainty"}},
    "joint, pcgrad (= upgrad)": {"balancer": {"name": "pcgrad"}},
    "joint, mgda": {"balancer": {"name": "mgda"}},
    "joint, equal, CRF": {  # a linear-chain CRF over the slots (BiLSTM-CRF)
        "model": {"options": {"head_types": {"slots": "crf"}}},
        "tasks": {"slots": {"loss": "crf"}},
    },
}
HEADER = ["run", "seeds", "intent acc", "slot F1", "sentence acc", "s / epoch (fastest)", "s / run"]
PUBLISHED = {  # Goo et al. 2018, Table 2, SNIPS: intent accuracy, slot F1, sentence accuracy
    "Joint Seq. BiLSTM (Hakkani-Tur et al. 2016)": (96.9, 87.3, 73.2),
    "Attention BiRNN (Liu and Lane 2016)": (96.7, 87.8, 74.1),
    "Slot-Gated, full attention (Goo et al. 2018)": (97.0, 88.8, 75.5),
}


def scores(folder: str, data: Any) -> dict[str, float | None]:
    """Intent accuracy, slot span F1 and joint sentence accuracy (%) of the run in
    ``folder`` on the test split (``None`` for a task the run did not learn)."""
    run = polytask.load_run(folder)
    predicted = run.predict(data.test.inputs)
    out: dict[str, float | None] = {"intent": None, "slots": None, "sentence": None}
    intent_right = slots_right = None
    if "intent" in predicted:
        intent_right = predicted["intent"].argmax(-1) == data.test.targets["intent"]
        out["intent"] = 100 * float(intent_right.float().mean())
    if "slots" in predicted:
        gold = data.test.targets["slots"]
        ids = predicted["slots"].argmax(-1)
        labels = next(t for t in data.tasks if t.name == "slots").labels
        span = SpanF1(labels)
        span.update(ids, gold)
        out["slots"] = 100 * float(span.compute())
        slots_right = ((ids == gold) | (gold < 0)).all(-1)
    if intent_right is not None and slots_right is not None:
        out["sentence"] = 100 * float((intent_right & slots_right).float().mean())
    return out


def one_run(
    name: str, seed: int, epochs: int, model: str, scratch: str, data: Any
) -> dict[str, Any]:
    """Train one run of :data:`RUNS` and score it on ``data``'s test split (SNIPS, loaded
    once by the caller)."""
    from polytask.cli.main import config_path
    from polytask.training.config import merge
    from polytask.training.experiment import ExperimentConfig, run_experiment
    from polytask.training.experiment_config import load_config_file

    packaged = config_path("snips_bilstm" if model == "bilstm" else "snips")
    settings = merge(load_config_file(packaged), RUNS[name])
    folder = "".join(c if c.isalnum() else "_" for c in name)
    settings.update(seed=seed, progress=False, report=False, output=f"{scratch}/{folder}-{seed}")
    settings["schedule"] = {**settings["schedule"], "epochs": epochs}
    config = ExperimentConfig.from_dict(settings)
    started = time.perf_counter()
    result = run_experiment(config)
    seconds = time.perf_counter() - started
    return {"run": name, "seed": seed, "seconds": seconds, "epochs": epochs,
            "best_epoch": result.best_epoch, **scores(str(result.output), data)}  # fmt: skip


def saved_results(model: str, epochs: int) -> tuple[list[dict[str, Any]], str | None]:
    """The runs a previous invocation already wrote for ``model`` at ``epochs`` epochs, and
    the command that wrote them (``([], None)`` when there are none)."""
    saved = results_dir() / f"snips_joint_{model}.json"
    if not saved.is_file():
        return [], None
    payload = json.loads(saved.read_text())
    rows = [r for r in payload["runs"] if r["epochs"] == epochs and r["run"] in RUNS]
    return rows, payload["meta"]["command"]


def write(
    rows: list[dict[str, Any]], model: str, seeds: int, epochs: int, command: str | None = None
) -> None:
    """Write the JSON (every run) and the markdown table (mean +- 95% CI per run kind over
    seeds ``0..seeds-1``); ``command``: the command that trained the runs, when it was not
    this one."""
    table = []
    for name in RUNS:
        mine = [r for r in rows if r["run"] == name and r["seed"] < seeds]
        if not mine:
            continue
        cells = []
        for key in ("intent", "slots", "sentence"):
            values = [r[key] for r in mine if r[key] is not None]
            cells.append(summarize(values).format(1) if values else "-")
        epoch_times = [r["seconds"] / r["epochs"] for r in mine]
        per_epoch = f"{statistics.median(epoch_times):.1f} ({min(epoch_times):.1f})"
        per_run = statistics.median(r["seconds"] for r in mine)
        table.append([name, len(mine), *cells, per_epoch, f"{per_run:.0f}"])
    for name, (intent, slots, sentence) in PUBLISHED.items():
        table.append([name, "-", f"{intent}", f"{slots}", f"{sentence}", "-", "-"])
    info = meta("snips_joint.py", model=model, seeds=seeds, epochs=epochs)
    if command is not None:
        info["command"] = command
    rows_shown = [r for r in rows if r["seed"] < seeds]
    total_hours = sum(r["seconds"] for r in rows_shown) / 3600
    lines = [
        "# SNIPS joint intent detection and slot filling",
        "",
        f"`{info['command']}` on {info['machine']}, {info['cpus']} CPUs, torch {info['torch']}, "
        f"2 threads. Model: {model} trained from scratch (packaged configuration), "
        f"{epochs} epochs, the epoch chosen on validation slot span F1 (intent alone: on "
        "validation intent accuracy); seeds 0, 1, ... (the seeds column), mean +- 95% CI "
        "(Student t). Test split of Goo et al. 2018 (700 sentences). Intent accuracy, slot "
        "span F1 (CoNLL convention) and sentence accuracy (intent and every slot right), %. "
        "Seconds per epoch and per run (training and the validation pass of every epoch) are "
        "medians over the seeds, with the fastest run's seconds per epoch in brackets: the "
        "machine was shared with other work (a test run) during some runs, which took up to "
        "4x longer. "
        f"Wall time of the {len(rows_shown)} runs: {total_hours:.2f} h.",
        "",
        *markdown_table(
            HEADER,
            table,
        ),
        "",
        "Published rows: Goo et al. 2018, Table 2 (same split, same metrics). Pretrained "
        "encoders (Joint BERT, Chen et al. 2019: 98.6 intent accuracy, 97.0 slot F1) are not "
        "comparable with a from-scratch encoder.",
    ]
    write_results(f"snips_joint_{model}", {"meta": info, "runs": rows}, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--model", choices=("bilstm", "transformer"), default="bilstm")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (5 with --full, else 1)")
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs already written; train the rest"
    )
    parser.add_argument(
        "--table", action="store_true", help="only write the table again from the saved runs"
    )
    args = parser.parse_args()
    seeds = args.seeds or (5 if args.full else 1)
    epochs = 20 if args.full else 2
    torch.set_num_threads(2)
    rows, command = saved_results(args.model, epochs) if args.resume or args.table else ([], None)
    if args.table:
        write(rows, args.model, seeds, epochs, command)
        return
    done = {(r["run"], r["seed"]) for r in rows}
    data = polytask.data.load("snips")
    with tempfile.TemporaryDirectory(prefix="snips-") as scratch:
        for seed in range(seeds):  # seed-major: a stopped run leaves every kind with k seeds
            for name in RUNS:
                if (name, seed) in done:
                    continue
                rows.append(one_run(name, seed, epochs, args.model, scratch, data))
                print(rows[-1], flush=True)
                write(rows, args.model, seeds, epochs)
    write(rows, args.model, seeds, epochs)


if __name__ == "__main__":
    main()
