"""CAGrad: conflict-averse gradient descent."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import cagrad_weights


@register("cagrad")
class CAGrad(GramianWeighting):
    """Conflict-Averse Gradient descent (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021).

    Maximise the worst task's improvement within a ball around the mean gradient
    ``g_0 = J^T b`` (``b = 1/T``): ``max_d min_i <g_i, d>`` s.t. ``||d - g_0|| <= c ||g_0||``.
    Its dual gives ``w = argmin_{w in simplex} g_w^T g_0 + c ||g_0|| ||g_w||`` and
    ``d = (g_0 + c ||g_0|| g_w / ||g_w||) / (1 + c^2)`` (the paper code's ``rescale=1``), all
    on the Gramian. ``c = 0`` is the mean gradient; for ``c`` large enough the update does not
    conflict with any task (it tends to MGDA's direction).

    Args:
        c: radius of the ball relative to ``||g_0||`` (0.4, the paper's MultiMNIST/NYUv2
            value).
    """

    def __init__(self, c: float = 0.4) -> None:
        super().__init__()
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        self.c = c
        self.previous: Tensor | None = None

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        T = gramian.shape[0]
        b = torch.full((T,), 1.0 / T, dtype=torch.float64)
        if self.c == 0:
            return b.to(gramian.device, gramian.dtype)
        G = gramian.detach().to("cpu", torch.float64)
        start = self.previous if self.previous is not None and self.previous.numel() == T else None
        w = cagrad_weights(G, self.c, start)
        self.previous = w
        g0_norm = float((b @ G @ b).clamp_min(0).sqrt())
        gw_norm = float((w @ G @ w).clamp_min(0).sqrt())
        coeff = self.c * g0_norm / gw_norm if gw_norm > 0 else 0.0
        weights = (b + coeff * w) / (1 + self.c**2)
        return weights.to(gramian.device, gramian.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "previous": self.previous}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.previous = state["previous"]
