"""Sequence-labelling metrics as the field reports them: span F1 over BIO chunks and
sentence accuracy.

Span F1 follows the CoNLL-2000 ``conlleval`` script and seqeval's default (lenient) mode
(Ramshaw & Marcus 1995 BIO tags; Tjong Kim Sang & Buchholz 2000): a chunk starts at ``B-x``,
and also at an ``I-x`` that follows ``O`` or a tag of another type (a malformed sequence is
read, not refused); it ends before ``O``, ``B-``, or a tag of another type. A predicted chunk
counts when its type, start and end all equal a gold chunk's. The score is micro-averaged
over slot types: ``F1 = 2 TP / (predicted + gold)``.

Both metrics see whole sequences: positions without a label (target ``-1``: padding, a
``[CLS]`` token, a missing label) are left out of the gold and the predicted sequence alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchmetrics
from torch import Tensor


def _split(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I"):
        raise ValueError(f"tag {tag!r} is not a BIO tag (O, B-type or I-type)")
    return prefix, kind


def bio_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The chunks of one tag sequence as ``(type, first, last)`` token positions."""
    spans: set[tuple[str, int, int]] = set()
    kind, start = "", -1
    for i, tag in enumerate([*tags, "O"]):
        prefix, this = _split(tag)
        continues = prefix == "I" and this == kind and start >= 0
        if start >= 0 and not continues:
            spans.add((kind, start, i - 1))
            start, kind = -1, ""
        if prefix != "O" and not continues:
            start, kind = i, this
    return spans


def _rows(pred: Tensor, target: Tensor) -> list[tuple[list[int], list[int]]]:
    """Each sequence's labelled positions: ``(predicted ids, gold ids)``."""
    rows = []
    for p, t in zip(pred.tolist(), target.tolist(), strict=True):
        kept = [(a, b) for a, b in zip(p, t, strict=True) if b >= 0]
        rows.append(([a for a, _ in kept], [b for _, b in kept]))
    return rows


class SequenceMetric(torchmetrics.Metric):
    """A metric over whole sequences: :meth:`update` takes predicted class ids and gold ids
    ``(B, L)`` (gold ``-1`` where there is no label), never flattened tokens."""

    sequence_level = True
    higher_is_better = True
    full_state_update = False


class SpanF1(SequenceMetric):
    """Micro-averaged span F1 over BIO chunks (module docstring).

    Args:
        labels: the tag of each class id (``O``, ``B-type``, ``I-type``).
    """

    correct: Tensor
    predicted: Tensor
    gold: Tensor

    def __init__(self, labels: Sequence[str]) -> None:
        super().__init__()
        for tag in labels:
            _split(tag)  # every tag is a BIO tag
        self.labels = list(labels)
        for name in ("correct", "predicted", "gold"):
            self.add_state(
                name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
            )

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Count the chunks of each sequence of ``pred`` and ``target`` ``(B, L)``."""
        for p, t in _rows(pred, target):
            mine = bio_spans([self.labels[i] for i in p])
            gold = bio_spans([self.labels[i] for i in t])
            self.correct += len(mine & gold)
            self.predicted += len(mine)
            self.gold += len(gold)

    def compute(self) -> Tensor:
        """``2 TP / (predicted + gold)`` (0 when there are no chunks at all)."""
        total = self.predicted + self.gold
        return torch.where(total > 0, 2 * self.correct / total.clamp_min(1), 0.0)


class SentenceAccuracy(SequenceMetric):
    """The fraction of sequences whose every labelled token is right (the slots' half of the
    joint "sentence accuracy" of Goo et al. 2018)."""

    right: Tensor
    total: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state(
            "right", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Count the sequences of ``pred`` and ``target`` ``(B, L)`` that are right."""
        rows = _rows(pred, target)
        self.right += sum(1 for p, t in rows if t and p == t)
        self.total += sum(1 for _, t in rows if t)

    def compute(self) -> Tensor:
        """Right sequences over sequences with at least one label."""
        return self.right / self.total.clamp_min(1)
