"""DWA: dynamic weight average."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers._state import RunningLosses
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("dwa")
class DWA(LossWeighting):
    """Dynamic Weight Average (Liu, Johns & Davison, "End-to-End Multi-Task Learning with
    Attention", CVPR 2019; reference text 05):

    ``w_k(t) = exp(r_k(t-1) / temperature) / sum_i exp(r_i(t-1) / temperature)``,
    ``r_k(t-1) = L_k(t-1) / L_k(t-2)``

    (the paper's ``K exp(.) / sum`` divided by ``T = K``), where ``L_k(t)`` is task ``k``'s mean
    loss over period ``t``. A task whose loss falls slowly gets more weight. Equal weights
    ``1/T`` for the first two periods. Means are over the steps where the task had labels; a
    task absent from a whole period keeps its two previous means, and a task without two
    completed periods counts as ratio 1.

    Args:
        temperature: softness of the weighting (2.0, as in the paper); large values tend to
            equal weighting.
        period: steps per period, or ``None`` (default) for epochs: the trainer calls
            :meth:`epoch_end` (call it yourself in your own loop).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant", "weights_sum_to_one"})

    def __init__(self, temperature: float = 2.0, period: int | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if period is not None and period < 1:
            raise ValueError(f"period must be >= 1 or None, got {period}")
        self.temperature = temperature
        self.period = period
        self.window = RunningLosses()
        self.steps_in_window = 0
        # (2, T): each task's mean loss over its last two completed periods (NaN: none yet).
        self.previous: Tensor | None = None

    task_state: ClassVar[Mapping[str, PerTask]] = {
        **RunningLosses.task_state("window"),
        "previous": PerTask(axes=(1,)),
    }

    def loss_weights(self, losses: Tensor) -> Tensor:
        if self.previous is None:
            weights = torch.full_like(losses, 1.0 / losses.numel())
        else:
            # A task without two completed periods (NaN) counts as ratio 1.
            ratio = self.previous[1] / self.previous[0].clamp_min(1e-12)
            ratio = torch.nan_to_num(ratio.to(losses.dtype), nan=1.0)
            weights = torch.softmax(ratio / self.temperature, dim=0)
        self.window.update(losses)
        self.steps_in_window += 1
        if self.period is not None and self.steps_in_window >= self.period:
            self._close_period()
        return weights

    def epoch_end(self) -> None:
        if self.period is None:
            self._close_period()

    def _close_period(self) -> None:
        """Shift each task's period means by one, for the tasks seen in this period (a task
        absent from the whole period keeps its history)."""
        mean = self.window.mean()
        if mean is not None:
            seen = ~torch.isnan(mean)
            if self.previous is None:
                self.previous = torch.stack([torch.full_like(mean, torch.nan), mean])
            else:
                last = self.previous[1].to(mean)
                older = torch.where(seen, last, self.previous[0].to(mean))
                self.previous = torch.stack([older, torch.where(seen, mean, last)])
        self.window.reset_window()
        self.steps_in_window = 0

    def get_extra_state(self) -> dict[str, Any]:
        return {
            **super().get_extra_state(),
            "window": self.window.state(),
            "steps_in_window": self.steps_in_window,
            "previous": self.previous,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.window.load(state["window"])
        self.steps_in_window = int(state.get("steps_in_window", 0))
        previous = state["previous"]
        if isinstance(previous, list):  # older checkpoints: a list of up to two means
            if len(previous) == 0:
                previous = None
            else:
                if len(previous) == 1:
                    previous = [torch.full_like(previous[0], torch.nan), previous[0]]
                previous = torch.stack(previous)
        self.previous = previous
