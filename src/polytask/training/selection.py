"""Model selection and early stopping on the validation split."""

from __future__ import annotations

import copy
import math
from typing import Any

from torch import Tensor, nn


class ModelSelection:
    """Keeps the best validation score, its epoch and a copy of the model's weights then, and
    counts the epochs since it last improved (for early stopping).

    Args:
        higher_is_better: the direction of the monitored value.
        patience: stop after this many epochs without improvement (``None``: never).
    """

    def __init__(self, higher_is_better: bool, patience: int | None = None) -> None:
        self.higher_is_better = higher_is_better
        self.patience = patience
        self.best_score = math.nan
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_state: dict[str, Tensor] | None = None

    def improved(self, score: float) -> bool:
        """Whether ``score`` beats the best so far (any score beats none; NaN never does)."""
        if math.isnan(self.best_score):
            return not math.isnan(score)
        return score > self.best_score if self.higher_is_better else score < self.best_score

    def update(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Record one validation; keep the model's weights when it improved."""
        if self.improved(score):
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {
                k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v)
                for k, v in model.state_dict().items()
            }
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs passed without improvement."""
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Scores and counters (the best weights are stored beside, as ``best_model``)."""
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any], best: dict[str, Tensor] | None) -> None:
        """Restore :meth:`state_dict` and the best weights."""
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        self.best_state = best
