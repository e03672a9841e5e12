"""PCGrad: project away the conflicting components of task gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register


@register("pcgrad")
class PCGrad(GramianWeighting):
    """Projecting Conflicting Gradients (Yu et al., "Gradient Surgery for Multi-Task
    Learning", NeurIPS 2020).

    For each task ``i``, starting from ``g_i^PC = g_i`` and visiting the other tasks ``j`` in a
    random order: if ``<g_i^PC, g_j> < 0`` then
    ``g_i^PC <- g_i^PC - <g_i^PC, g_j> / ||g_j||^2 g_j``.
    The update is ``(1/T) sum_i g_i^PC`` (the paper sums; divided by ``T`` here, the library's
    mean convention, so that PCGrad equals equal weighting when no gradients conflict).

    Every ``g_i^PC`` is a linear combination ``sum_k C_ik g_k`` and the inner products are read
    from the Gramian, so the method returns weights ``w = (1/T) 1^T C`` and never touches the
    gradients' coordinates. Visiting orders for all ``i`` are drawn at once (one random
    permutation per task) and the projections run vectorised over ``i``.

    Args:
        seed: seed of the balancer's own generator for the visiting orders (saved in
            ``state_dict``, so a resumed run draws the same orders).
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def orders(self, T: int) -> Tensor:
        """``(T, T-1)``: row ``i`` is a random order of the tasks other than ``i``."""
        keys = torch.rand(T, T, generator=self.generator)
        keys.fill_diagonal_(2.0)  # self goes last, then is dropped
        return keys.argsort(dim=1)[:, : T - 1]

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        T = gramian.shape[0]
        G = gramian.to(torch.float64 if gramian.dtype == torch.float64 else torch.float32)
        C = torch.eye(T, dtype=G.dtype, device=G.device)
        if T > 1:
            order = self.orders(T).to(G.device, non_blocking=True)
            rows = torch.arange(T, device=G.device)
            sq_norms = G.diagonal()
            for k in range(T - 1):
                j = order[:, k]
                dots = (C * G[:, j].T).sum(dim=1)  # <g_i^PC, g_j> for each i
                norm_j = sq_norms[j]
                coeff = torch.where(
                    (dots < 0) & (norm_j > 0),
                    dots / torch.where(norm_j > 0, norm_j, torch.ones_like(norm_j)),
                    torch.zeros_like(dots),
                )
                C = C.index_put((rows, j), -coeff, accumulate=True)
        return (C.sum(dim=0) / T).to(gramian.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        state["generator"] = self.generator.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.generator.set_state(state["generator"])
