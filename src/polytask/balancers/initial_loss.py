"""Initial-loss normalisation: weights from the losses at the start of training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers._state import RunningLosses
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("initial_loss")
class InitialLossNormalization(LossWeighting):
    """Divide each loss by its value at the start of training: ``w_k = 1 / (T L_k(0))``.

    Makes the objective dimensionless and **scale invariant** (multiplying a task's loss by a
    constant leaves the update unchanged); not shift invariant. Reference text 05 ("weights
    from the initial state"). ``L_k(0)`` is the mean of the first ``warmup_steps`` batch losses
    (until then, the mean so far).

    Args:
        warmup_steps: batches averaged to estimate ``L_k(0)`` (1: the first batch).
        eps: floor on ``L_k(0)`` against division by zero (1e-12).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"loss_scale_invariant", "order_invariant"})

    def __init__(self, warmup_steps: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self.eps = eps
        self.history = RunningLosses()

    task_state: ClassVar[Mapping[str, PerTask]] = RunningLosses.task_state("history")

    def loss_weights(self, losses: Tensor) -> Tensor:
        self.history.update(losses, limit=self.warmup_steps)
        initial = self.history.mean()
        assert initial is not None
        return 1.0 / (losses.numel() * initial.clamp_min(self.eps))

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "history": self.history.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.history.load(state["history"])


def label_prior_loss(target: Tensor, kind: str) -> float:
    """The prior loss of a task from its labels (reference text 05): the entropy
    ``-sum_c p_c log p_c`` of the class frequencies for classification (binary or multiclass),
    the label variance ``E||y - E y||^2`` for regression. Missing labels (NaN, negative
    classes) are ignored."""
    if kind == "regression":
        values = target[~torch.isnan(target)] if target.is_floating_point() else target.float()
        if values.numel() == 0:
            raise ValueError("no labelled value to compute a prior from")
        flat = values.reshape(values.shape[0], -1) if values.dim() > 1 else values[:, None]
        return float(((flat - flat.mean(0)) ** 2).sum(1).mean())
    labels = target[~torch.isnan(target)] if target.is_floating_point() else target[target >= 0]
    labels = labels.long().flatten()
    if labels.numel() == 0:
        raise ValueError("no labelled value to compute a prior from")
    p = torch.bincount(labels).double() / labels.numel()
    p = p[p > 0]
    return float(-(p * p.log()).sum())
