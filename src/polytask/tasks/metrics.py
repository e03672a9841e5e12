"""Task metrics by name, built on torchmetrics, each with its direction.

``make_metric("auc", kind="binary")`` returns a fresh ``torchmetrics.Metric``; its
``higher_is_better`` attribute (from torchmetrics) tells whether a larger value is better, which
delta-m and model selection need. Names: ``auc``, ``accuracy``, ``f1``, ``precision``,
``recall``, ``ap`` (classification); ``mse``, ``rmse``, ``mae``, ``r2`` (regression);
``span_f1`` and ``sentence_accuracy`` (token classification: :mod:`polytask.tasks.spans`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torchmetrics
import torchmetrics.classification as tmc
import torchmetrics.regression as tmr
from torch import Tensor

from polytask._registry import unknown_name_message
from polytask.tasks.losses import Kind
from polytask.tasks.spans import SentenceAccuracy, SpanF1

MetricFactory = Callable[[Kind, "int | None", "Sequence[str] | None"], torchmetrics.Metric]


def _classification(
    binary: type[torchmetrics.Metric], multiclass: type[torchmetrics.Metric], **multi_kw: object
) -> MetricFactory:
    def build(
        kind: Kind, num_classes: int | None, labels: Sequence[str] | None
    ) -> torchmetrics.Metric:
        if kind == "binary":
            return binary()
        if kind == "multiclass":
            if num_classes is None:
                raise ValueError("a multiclass metric needs num_classes on the Task")
            return multiclass(num_classes=num_classes, **multi_kw)
        raise ValueError(f"a classification metric cannot score a {kind} task")

    return build


def _regression(cls: type[torchmetrics.Metric], **kw: object) -> MetricFactory:
    def build(
        kind: Kind, num_classes: int | None, labels: Sequence[str] | None
    ) -> torchmetrics.Metric:
        if kind != "regression":
            raise ValueError(f"a regression metric cannot score a {kind} task")
        return cls(**kw)

    return build


def _sequence(cls: type[SpanF1] | type[SentenceAccuracy]) -> MetricFactory:
    def build(
        kind: Kind, num_classes: int | None, labels: Sequence[str] | None
    ) -> torchmetrics.Metric:
        if kind != "multiclass":
            raise ValueError(f"a sequence metric scores token classification (ce), not {kind}")
        if cls is SentenceAccuracy:
            return SentenceAccuracy()
        if labels is None:
            raise ValueError("span_f1 needs the tag names: Task(..., labels=[...])")
        return SpanF1(labels)

    return build


METRICS: dict[str, MetricFactory] = {
    "auc": _classification(tmc.BinaryAUROC, tmc.MulticlassAUROC),
    "accuracy": _classification(tmc.BinaryAccuracy, tmc.MulticlassAccuracy, average="micro"),
    "f1": _classification(tmc.BinaryF1Score, tmc.MulticlassF1Score, average="macro"),
    "precision": _classification(tmc.BinaryPrecision, tmc.MulticlassPrecision, average="macro"),
    "recall": _classification(tmc.BinaryRecall, tmc.MulticlassRecall, average="macro"),
    "ap": _classification(tmc.BinaryAveragePrecision, tmc.MulticlassAveragePrecision),
    "mse": _regression(tmr.MeanSquaredError),
    "rmse": _regression(tmr.MeanSquaredError, squared=False),
    "mae": _regression(tmr.MeanAbsoluteError),
    "r2": _regression(tmr.R2Score),
    "span_f1": _sequence(SpanF1),
    "sentence_accuracy": _sequence(SentenceAccuracy),
}


def make_metric(
    name: str, kind: Kind, num_classes: int | None = None, labels: Sequence[str] | None = None
) -> torchmetrics.Metric:
    """A fresh metric ``name`` for a task of ``kind`` (``labels``: the class names, which
    ``span_f1`` reads); raises with close names if unknown."""
    if name not in METRICS:
        raise KeyError(unknown_name_message("metric", name, list(METRICS)))
    return METRICS[name](kind, num_classes, labels)


def higher_is_better(metric: torchmetrics.Metric) -> bool:
    """Whether larger values of ``metric`` are better (torchmetrics' own declaration)."""
    value = metric.higher_is_better
    if value is None:
        raise ValueError(f"{type(metric).__name__} declares no direction (higher_is_better)")
    return bool(value)


def metric_inputs(kind: Kind, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Convert aligned ``(pred, target)`` into what torchmetrics expects for ``kind``:
    probabilities and integer labels for classification, floats for regression."""
    if kind == "binary":
        return pred.sigmoid(), target.long()
    if kind == "multiclass":
        return pred.softmax(-1), target
    return pred, target
