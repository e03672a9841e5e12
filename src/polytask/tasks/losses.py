"""Built-in per-sample task losses with masks for missing labels.

Every loss here maps ``(prediction, target)`` to a per-element loss with the shape of the
target; :func:`masked_mean` then averages it over the labelled elements only:

``L = sum_i m_i l_i / max(sum_i m_i, 1)``

so a batch in which no sample has a label for a task gives ``L = 0`` with zero gradient
(never NaN). Missing labels are marked by the mask, by ``NaN`` in a floating-point target,
or by a negative class index in an integer target (PyTorch's ``ignore_index`` convention).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from polytask._registry import unknown_name_message

Kind = Literal["binary", "multiclass", "regression"]


class TargetTypeError(TypeError):
    """A task's targets have a dtype its loss cannot take; the message names the task."""


ElementLoss = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class LossSpec:
    """A named element-wise loss and the kind of task it implies.

    Attributes:
        name: registry name.
        kind: ``binary`` (logits, targets in {0, 1}), ``multiclass`` (logits ``(B, C)``,
            integer targets) or ``regression``.
        fn: ``(prediction, target) -> per-element loss`` with the target's shape.
    """

    name: str
    kind: Kind
    fn: ElementLoss


def _bce(pred: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(pred, target, reduction="none")


def _ce(pred: Tensor, target: Tensor) -> Tensor:
    # pred (B, C) or (B, L, C); cross_entropy wants the class axis second.
    if pred.dim() > 2:
        pred = pred.movedim(-1, 1)
    return F.cross_entropy(pred, target, reduction="none")


def _mse(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).square()


def _l1(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).abs()


def _huber(pred: Tensor, target: Tensor) -> Tensor:
    return F.huber_loss(pred, target, reduction="none", delta=1.0)


def _crf_alone(pred: Tensor, target: Tensor) -> Tensor:
    raise ValueError(
        "the crf loss is computed by TaskSet.losses from the model's outputs (it reads the "
        "CRF head's transitions); it has no element-wise form"
    )


LOSSES: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("bce", "binary", _bce),
        LossSpec("ce", "multiclass", _ce),
        LossSpec("mse", "regression", _mse),
        LossSpec("l1", "regression", _l1),
        LossSpec("huber", "regression", _huber),
        # A linear-chain CRF over token logits (polytask.tasks.crf); TaskSet computes it.
        LossSpec("crf", "multiclass", _crf_alone),
    )
}
ALIASES = {
    "binary_cross_entropy": "bce",
    "cross_entropy": "ce",
    "l2": "mse",
    "mae": "l1",
}


def get_loss(name: str) -> LossSpec:
    """The built-in loss called ``name`` (``bce``, ``ce``, ``mse``, ``l1``, ``huber``,
    ``crf``)."""
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        raise KeyError(unknown_name_message("loss", name, [*LOSSES, *ALIASES]))
    return LOSSES[key]


def align(task: str, kind: Kind, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Check and align a prediction with its target; raise naming the task on mismatch.

    Binary and regression predictions of shape ``(B, 1)`` are accepted for targets ``(B,)``.
    Multiclass predictions must be ``target.shape + (C,)`` with an integer target.

    Returns:
        ``(pred, target)`` with matching shapes (and a float target for binary tasks).
    """
    if kind == "multiclass":
        if target.is_floating_point() or target.is_complex():
            raise TargetTypeError(
                f"task {task!r}: cross-entropy needs integer class targets, got {target.dtype}; "
                "convert the labels with .long()"
            )
        if pred.dim() != target.dim() + 1 or pred.shape[:-1] != target.shape:
            raise ValueError(
                f"task {task!r}: prediction shape {tuple(pred.shape)} does not fit target shape "
                f"{tuple(target.shape)}; a {kind} task needs logits of shape target.shape + (C,)"
            )
        return pred, target
    if pred.dim() == target.dim() + 1 and pred.shape[-1] == 1:
        pred = pred.squeeze(-1)
    if pred.shape != target.shape:
        raise ValueError(
            f"task {task!r}: prediction shape {tuple(pred.shape)} does not match target shape "
            f"{tuple(target.shape)}"
        )
    if not target.is_floating_point():
        target = target.to(pred.dtype)
    return pred, target


def label_mask(target: Tensor) -> Tensor:
    """Elements that carry a label: not NaN (float targets), not negative (integer targets)."""
    if target.is_floating_point():
        return ~torch.isnan(target)
    return target >= 0


def masked_mean(element_loss: Tensor, mask: Tensor) -> Tensor:
    """``sum(mask * loss) / max(sum(mask), 1)``: the mean over labelled elements only.

    Args:
        element_loss: per-element loss, any shape ``S``.
        mask: boolean, shape ``S`` or a prefix of ``S`` (then broadcast over the rest).

    Returns:
        A scalar tensor; ``0`` (with zero gradient) when nothing is labelled.
    """
    total, count = masked_sum(element_loss, mask)
    return total / count.clamp_min(1.0)


def masked_sum(element_loss: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The sum of ``element_loss`` over the labelled elements and their number (two scalar
    tensors, the count in the loss's dtype); ``mask`` as in :func:`masked_mean`."""
    while mask.dim() < element_loss.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(element_loss)
    # where() keeps NaN/inf from unlabelled elements out of the sum and out of the gradient.
    total = torch.where(mask, element_loss, torch.zeros_like(element_loss)).sum()
    return total, mask.sum().to(element_loss.dtype)


def sanitize_target(target: Tensor) -> Tensor:
    """Replace missing-label markers (NaN, negative class) by a valid placeholder value, so the
    element-wise loss stays finite; the mask then removes those elements."""
    if target.is_floating_point():
        return torch.nan_to_num(target, nan=0.0)
    return target.clamp_min(0)
