"""Slot filling scored as the field scores it: span F1 over BIO chunks (CoNLL / seqeval
convention, micro-averaged over slot types) and sentence accuracy, checked on hand-worked
sequences, malformed I- tags included."""

from __future__ import annotations

import pytest
import torch

from polytask.tasks import Task, TaskSet
from polytask.tasks.spans import bio_spans

LABELS = ["O", "B-city", "I-city", "B-date", "I-date"]


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["B-city", "I-city", "O", "B-date"], {("city", 0, 1), ("date", 3, 3)}),
        # An I- after O starts a chunk (seqeval's lenient default, as conlleval).
        (["O", "I-city", "I-city"], {("city", 1, 2)}),
        # An I- of another type ends the chunk and starts its own.
        (["B-city", "I-date", "I-date"], {("city", 0, 0), ("date", 1, 2)}),
        # B after B: two chunks of one token.
        (["B-city", "B-city"], {("city", 0, 0), ("city", 1, 1)}),
        (["O", "O"], set()),
        (["I-date"], {("date", 0, 0)}),
    ],
)
def test_bio_spans_by_hand(tags: list[str], spans: set[tuple[str, int, int]]) -> None:
    assert bio_spans(tags) == spans


def ids(tags: list[str], length: int) -> list[int]:
    return [LABELS.index(t) for t in tags] + [-1] * (length - len(tags))


def test_span_f1_and_sentence_accuracy_by_hand() -> None:
    """Two utterances. Gold: {city 0-1, date 3} and {date 1-2}. Predicted: {city 0-1,
    city 3} and {date 1-2}: 2 correct of 3 predicted and 3 gold: F1 = 2/3. Sentence
    accuracy: the second utterance only: 1/2. Padding (-1) is never scored."""
    gold = torch.tensor(
        [ids(["B-city", "I-city", "O", "B-date"], 5), ids(["O", "B-date", "I-date"], 5)]
    )
    pred_tags = torch.tensor(
        [ids(["B-city", "I-city", "O", "B-city"], 5), ids(["O", "B-date", "I-date"], 5)]
    )
    pred_tags[pred_tags < 0] = 1  # what the model predicts at padding must not count
    logits = torch.nn.functional.one_hot(pred_tags, len(LABELS)).float()
    tasks = TaskSet([Task("slots", "ce", num_classes=5, labels=LABELS,
                          metrics=("span_f1", "sentence_accuracy", "accuracy"))])  # fmt: skip
    metrics = tasks.make_metrics()
    tasks.update_metrics(metrics, {"slots": logits[:1]}, {"slots": gold[:1]})
    tasks.update_metrics(metrics, {"slots": logits[1:]}, {"slots": gold[1:]})  # two batches
    values = {k: float(m.compute()) for k, m in metrics["slots"].items()}
    assert values["span_f1"] == pytest.approx(2 / 3)
    assert values["sentence_accuracy"] == pytest.approx(1 / 2)
    assert values["accuracy"] == pytest.approx(6 / 7)


def test_span_metrics_need_the_tag_names() -> None:
    with pytest.raises(ValueError, match="labels="):
        TaskSet([Task("slots", "ce", num_classes=5, metrics=("span_f1",))]).make_metrics()
    with pytest.raises(ValueError, match="5 classes"):
        Task("slots", "ce", num_classes=5, labels=LABELS[:3])


def test_span_f1_equals_seqeval_on_random_sequences() -> None:
    """seqeval (the field's scorer, default mode) as an independent reference: random tag
    sequences with many malformed I- tags, the same micro F1."""
    seqeval = pytest.importorskip("seqeval.metrics")
    from polytask.tasks.spans import SpanF1

    g = torch.Generator().manual_seed(0)
    gold = torch.randint(0, len(LABELS), (300, 9), generator=g)
    pred = torch.where(
        torch.rand(300, 9, generator=g) < 0.7, gold, torch.randint(0, 5, (300, 9), generator=g)
    )
    lengths = torch.randint(1, 10, (300,), generator=g)
    gold[torch.arange(9)[None, :] >= lengths[:, None]] = -1  # padding
    metric = SpanF1(LABELS)
    metric.update(pred, gold)
    names = [
        [LABELS[i] for i, t in zip(p, y, strict=True) if t >= 0]
        for p, y in zip(pred.tolist(), gold.tolist(), strict=True)
    ]
    truth = [[LABELS[t] for t in y if t >= 0] for y in gold.tolist()]
    assert float(metric.compute()) == pytest.approx(seqeval.f1_score(truth, names), abs=1e-12)


def test_packaged_snips_config_trains_and_compares(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`polytask train snips` (transformer) and `snips_bilstm` (BiLSTM) and `polytask
    compare snips` as they are (a few steps), with a gradient balancer too; slots report
    span F1, token and sentence accuracy."""
    from polytask.cli.main import main

    from .conftest import DATA_ROOT, have_data

    if not have_data("snips_joint"):
        pytest.skip("local snips copy not found")
    monkeypatch.setenv("POLYTASK_DATA", str(DATA_ROOT))
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    short = ["schedule.max_steps=4", "progress=false", "report=false"]
    for packaged in ("snips", "snips_bilstm"):
        assert main(["train", packaged, *short]) == 0
        out = capsys.readouterr().out
        assert "span_f1" in out and "sentence_accuracy" in out
    # One task of a configuration that types both heads and selects on slot F1: the monitor
    # must be the user's choice, and compare's single-task baselines make it the loss.
    assert main(["train", "snips_bilstm", *short, "only_tasks=[intent]"]) == 2
    error = capsys.readouterr().err
    assert "schedule.monitor 'slots/span_f1': unknown task 'slots'" in error
    assert "set schedule.monitor=loss" in error
    assert main(["train", "snips_bilstm", *short, "only_tasks=[intent]",
                 "schedule.monitor=intent/accuracy"]) == 0  # fmt: skip
    assert "span_f1" not in capsys.readouterr().out
    assert main(["compare", "snips", *short, "--balancers", "equal,pcgrad", "--seeds", "1",
                 "--no-baselines"]) == 0  # fmt: skip
    assert "slots/span_f1" in capsys.readouterr().out
    # A CRF over the slots, from the command line; a CRF head without the loss is refused.
    crf = ["model.options.head_types.slots=crf", "output=crf"]
    assert main(["train", "snips_bilstm", *short, *crf, "tasks.slots.loss=crf"]) == 0
    assert "span_f1" in capsys.readouterr().out
    assert main(["train", "snips_bilstm", *short, *crf, "output=crf-only-head"]) == 2
    assert "set its loss to 'crf' (configuration: tasks.slots.loss=crf)" in capsys.readouterr().err


def test_a_single_task_run_of_a_config_that_types_every_head() -> None:
    """only_tasks=[intent] on a configuration whose head_types names slots (the packaged
    snips ones, and the single-task baselines polytask compare trains): the model is built
    with the intent head only; a head_types entry naming no task of the data still raises."""
    from types import SimpleNamespace

    from polytask import Task
    from polytask.models.registry import create
    from polytask.training.experiment_build import model_options
    from polytask.training.experiment_config import NamedConfig

    data = SimpleNamespace(spec=SimpleNamespace(kind="tokens", vocab_size=12),
                           tasks=[Task("intent", "ce"), Task("slots", "ce")])  # fmt: skip
    config = NamedConfig("bilstm", {"heads": {"intent": 3}, "head_types": {"slots": "token"}})
    options = model_options(config, data, [Task("intent", "ce")])  # type: ignore[arg-type]
    assert options["head_types"] == {}
    create("bilstm", **options)
    typo = NamedConfig("bilstm", {"heads": {"intent": 3}, "head_types": {"slot": "token"}})
    with pytest.raises(KeyError, match="unknown task 'slot'"):
        create("bilstm", **model_options(typo, data, [Task("intent", "ce")]))  # type: ignore[arg-type]


def test_a_single_task_baseline_selects_on_its_own_task() -> None:
    """compare's single-task baselines of a configuration that selects on another task's
    metric (snips: slots/span_f1) select the intent baseline on its validation loss; the
    slots baseline keeps slots/span_f1."""
    from polytask.studies.baselines import single_task_config
    from polytask.training.experiment import ExperimentConfig

    config = ExperimentConfig.from_dict(
        {"dataset": {"name": "snips"}, "schedule": {"monitor": "slots/span_f1"}}
    )
    assert single_task_config(config, "intent", 0).schedule.monitor == "loss"
    assert single_task_config(config, "slots", 0).schedule.monitor == "slots/span_f1"


def test_a_task_override_keeps_what_it_does_not_change() -> None:
    """``tasks: {slots: {weight: 2}}`` in a configuration changes the weight and keeps the
    tag names (span_f1 reads them) and a regression task's target scale."""
    from polytask.training.experiment_build import apply_task_overrides
    from polytask.training.experiment_config import TaskOverride

    tags = ["O", "B-x", "I-x"]
    slots = Task("slots", "ce", metrics=["span_f1"], num_classes=3, labels=tags)
    price = Task("price", "mse", target_scale=(10.0, 2.0))
    overrides = {"slots": TaskOverride(weight=2.0), "price": TaskOverride(role="auxiliary")}
    changed = apply_task_overrides([slots, price], overrides)
    assert changed[0].labels == tags and changed[0].weight == 2.0
    assert changed[0].metrics == ("span_f1",)
    assert changed[1].target_scale == (10.0, 2.0) and changed[1].role == "auxiliary"
    relossed = apply_task_overrides([price], {"price": TaskOverride(loss="huber")})[0]
    assert relossed.loss == "huber" and relossed.target_scale == (10.0, 2.0)
