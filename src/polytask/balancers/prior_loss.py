"""Prior-loss normalisation: weights from label statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers._options import check_per_task, per_task_values
from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("prior_loss")
class PriorLossNormalization(LossWeighting):
    """``w_k = 1 / (T L_k^prior)``, with a prior loss per task computed from its labels
    before training (reference text 05, "weights from a prior state"): the entropy of the
    class frequencies for a classification task, the label variance for a regression task
    (:func:`polytask.balancers.initial_loss.label_prior_loss` computes both). Scale invariant.

    Args:
        priors: ``{task: prior loss}`` or a sequence in task order (all > 0).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"constant_weights"})

    def __init__(self, priors: Mapping[str, float] | Sequence[float]) -> None:
        super().__init__()
        values = list(priors.values()) if isinstance(priors, Mapping) else list(priors)
        if not values or any(not (v > 0) for v in values):
            raise ValueError(f"prior losses must be > 0, got {values}")
        self.priors = priors

    task_state: ClassVar[Mapping[str, PerTask]] = {"priors": PerTask()}  # a sequence in task order

    @classmethod
    def example_options(cls, num_tasks: int) -> dict[str, Any]:
        return {"priors": [1.0 + t for t in range(num_tasks)]}

    def on_bind(self) -> None:
        check_per_task(self.priors, self.task_names, "priors", complete=True)

    def loss_weights(self, losses: Tensor) -> Tensor:
        prior = torch.tensor(
            per_task_values(self.priors, self.task_names), dtype=losses.dtype, device=losses.device
        )
        return 1.0 / (losses.numel() * prior)
