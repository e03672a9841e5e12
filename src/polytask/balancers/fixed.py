"""Fixed task weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers._options import check_per_task, per_task_values
from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("fixed")
class FixedWeights(LossWeighting):
    """Fixed weights: ``L = sum_t w_t L_t``.

    Args:
        weights: ``{task: weight}`` (tasks left out get 0), a sequence in task order, or
            ``None`` (default) to use each task's prior weight ``Task.weight`` (1.0 unless
            set), which makes the objective the plain **sum** of the losses.

    Weights are used as given (not normalised), so ``fixed`` with weights ``1/T`` equals
    ``equal``.
    """

    properties: ClassVar[frozenset[str]] = frozenset({"constant_weights"})

    def __init__(self, weights: Mapping[str, float] | Sequence[float] | None = None) -> None:
        super().__init__()
        if weights is not None:
            values = list(weights.values()) if isinstance(weights, Mapping) else list(weights)
            if any(not (w >= 0) for w in values):
                raise ValueError(f"fixed weights must be >= 0, got {values}")
        self.given = weights

    task_state: ClassVar[Mapping[str, PerTask]] = {"given": PerTask()}  # a sequence in task order

    def on_bind(self) -> None:
        if self.given is not None:
            check_per_task(self.given, self.task_names, "fixed weights", complete=False)

    def loss_weights(self, losses: Tensor) -> Tensor:
        if self.given is None:
            values = [self.prior_weights.get(n, 1.0) for n in self.task_names]
        else:
            values = per_task_values(self.given, self.task_names)
        return torch.tensor(values, dtype=losses.dtype, device=losses.device)
