"""Prior-loss normalisation: weights from label statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from polytask._registry import unknown_name_message
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

    def __init__(self, priors: Mapping[str, float] | Sequence[float]) -> None:
        super().__init__()
        values = list(priors.values()) if isinstance(priors, Mapping) else list(priors)
        if not values or any(not (v > 0) for v in values):
            raise ValueError(f"prior losses must be > 0, got {values}")
        self.priors = priors

    def on_bind(self) -> None:
        if isinstance(self.priors, Mapping):
            for name in self.task_names:
                if name not in self.priors:
                    raise KeyError(f"prior_loss has no prior for task {name!r}")
            for key in self.priors:
                if key not in self.task_names:
                    raise KeyError(unknown_name_message("task in priors", key, self.task_names))
        elif len(self.priors) != self.num_tasks:
            raise ValueError(f"{len(self.priors)} priors given for {self.num_tasks} tasks")

    def loss_weights(self, losses: Tensor) -> Tensor:
        if isinstance(self.priors, Mapping):
            values = [float(self.priors[n]) for n in self.task_names]
        else:
            values = [float(v) for v in self.priors]
        prior = torch.tensor(values, dtype=losses.dtype, device=losses.device)
        return 1.0 / (losses.numel() * prior)
