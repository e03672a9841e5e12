"""DWA: dynamic weight average."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

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
    ``1/T`` for the first two periods.

    Args:
        temperature: softness of the weighting (2.0, as in the paper); large values tend to
            equal weighting.
        period: steps per period, or ``None`` (default) for epochs: the trainer calls
            :meth:`epoch_end` (call it yourself in your own loop).
    """

    def __init__(self, temperature: float = 2.0, period: int | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if period is not None and period < 1:
            raise ValueError(f"period must be >= 1 or None, got {period}")
        self.temperature = temperature
        self.period = period
        self.window = RunningLosses()
        self.previous: list[Tensor] = []  # means of the last two completed periods

    def loss_weights(self, losses: Tensor) -> Tensor:
        T = losses.numel()
        if len(self.previous) < 2:
            weights = torch.full_like(losses, 1.0 / T)
        else:
            ratio = self.previous[-1] / self.previous[-2].clamp_min(1e-12)
            weights = torch.softmax(ratio.to(losses.dtype) / self.temperature, dim=0)
        self.window.update(losses)
        if self.period is not None and self.window.count >= self.period:
            self._close_period()
        return weights

    def epoch_end(self) -> None:
        if self.period is None:
            self._close_period()

    def _close_period(self) -> None:
        mean = self.window.mean()
        if mean is not None:
            self.previous = [*self.previous[-1:], mean]
        self.window.reset_window()

    def get_extra_state(self) -> dict[str, Any]:
        return {
            **super().get_extra_state(),
            "window": self.window.state(),
            "previous": list(self.previous),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.window.load(state["window"])
        self.previous = list(state["previous"])
