"""RLW: random loss weighting."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("rlw")
class RLW(LossWeighting):
    """Random Loss Weighting (Lin et al., "Reasonable Effectiveness of Random Weighting: A
    Litmus Test for Multi-Task Learning", TMLR 2022): at every step
    ``w = softmax(z)``, ``z ~ N(0, I_T)``, so the weights sum to 1 (mean scale on average).

    Args:
        seed: seed of the balancer's own generator (its state is saved, so a resumed run
            draws the same weights).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"weights_sum_to_one"})

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def loss_weights(self, losses: Tensor) -> Tensor:
        z = torch.randn(losses.numel(), generator=self.generator, dtype=torch.float64)
        return torch.softmax(z, dim=0).to(losses.device, losses.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.generator.set_state(state["generator"])
