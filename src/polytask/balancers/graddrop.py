"""GradDrop: gradient sign dropout."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polytask.balancers.base import JacobianAggregation
from polytask.balancers.registry import register


@register("graddrop")
class GradDrop(JacobianAggregation):
    """Gradient Sign Dropout (Chen et al., "Just Pick a Sign: Optimizing Deep Multitask
    Models with Gradient Sign Dropout", NeurIPS 2020). Needs the Jacobian's coordinates.

    For every coordinate, the sign purity ``P = 1/2 (1 + sum_t J_t / sum_t |J_t|)`` is the
    probability of keeping the positive components; with ``U ~ Uniform(0, 1)`` per
    coordinate, task ``t``'s component survives if ``(P > U and J_t > 0)`` or
    ``(P < U and J_t < 0)``. The update is the mean of the surviving components (mean
    convention); the heads are trained on the mean loss.

    Args:
        seed: seed of the dropout draws (saved in ``state_dict``).
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def aggregate(self, jacobian: Tensor) -> Tensor:
        total = jacobian.sum(0)
        magnitude = jacobian.abs().sum(0)
        purity = 0.5 * (1 + total / magnitude.clamp_min(1e-30))
        draws = torch.rand(jacobian.shape[1], generator=self.generator, dtype=torch.float32)
        draws = draws.to(jacobian.device, non_blocking=True).to(jacobian.dtype)
        keep = ((purity > draws) & (jacobian > 0)) | ((purity < draws) & (jacobian < 0))
        return (jacobian * keep).sum(0) / jacobian.shape[0]

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.generator.set_state(state["generator"])
