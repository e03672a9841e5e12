"""GradNorm: learn task weights that equalise gradient norms at matched training rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register


@register("gradnorm")
class GradNorm(GramianWeighting):
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018; reference text 05).

    With weights ``w`` (``sum_k w_k = T``, reported divided by ``T``), gradient norms
    ``G_k = w_k ||grad L_k||`` at the level the engine runs (the features, or the shared
    parameters you pass, e.g. only the last shared layer as in the paper), their mean
    ``Gbar``, and relative inverse training rates ``r_k = Ltilde_k / mean(Ltilde)`` with
    ``Ltilde_k = L_k(t) / L_k(0)``, the weights descend

    ``L_grad = sum_k | G_k - Gbar r_k^alpha |``  (``Gbar r_k^alpha`` held constant)

    by one gradient step of size ``lr`` after each training step, then are renormalised to
    sum to ``T``. The step uses the weights from before the update, as in the paper.

    Args:
        alpha: strength of the pull towards equal training rates (1.5; 0 equalises norms).
        lr: step size of the weight update (0.025).
    """

    def __init__(self, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__()
        self.alpha, self.lr = alpha, lr
        self.weights: Tensor | None = None
        self.initial: Tensor | None = None

    task_state: ClassVar[Mapping[str, PerTask]] = {
        "weights": PerTask(fill=1.0),
        "initial": PerTask(),
    }

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        T = gramian.shape[0]
        dtype = gramian.dtype if gramian.dtype == torch.float64 else torch.float32
        norms = gramian.diagonal().clamp_min(0).sqrt().to(dtype)
        losses = losses.to(dtype)
        if self.weights is None or self.initial is None:
            self.weights = torch.ones(T, dtype=dtype, device=gramian.device)
            self.initial = losses.clamp_min(1e-12)
        # A task seen for the first time (NaN: absent until now) starts from this loss.
        self.initial = torch.where(
            torch.isnan(self.initial), losses.clamp_min(1e-12), self.initial.to(losses)
        )
        w = self.weights.to(gramian.device, dtype)
        used = w / w.sum()  # w / T when w sums to T (not so among the present tasks only)
        G = w * norms
        ratio = losses / self.initial.to(losses)
        target = G.mean() * (ratio / ratio.mean()) ** self.alpha
        grad = torch.sign(G - target) * norms
        updated = (w - self.lr * grad).clamp_min(1e-8)
        self.weights = updated * T / updated.sum()
        return used

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "weights": self.weights, "initial": self.initial}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.weights, self.initial = state["weights"], state["initial"]
