"""PCGrad: project away the conflicting components of task gradients."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
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

    properties: ClassVar[frozenset[str]] = frozenset(
        {
            "homogeneous",
            "linear_under_scaling",
            "mean_when_identical",
            "mean_without_conflict",
        }
    )

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def orders(self, T: int) -> Tensor:
        """``(T, T-1)``: row ``i`` is a random order of the tasks other than ``i``."""
        return visiting_orders(self.generator, T)

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        T = gramian.shape[0]
        if T == 1:
            return torch.ones_like(gramian[0])
        order = self.orders(T)
        if gramian.device.type == "cpu":
            # NumPy views of the CPU tensors (no copy): its per-operation cost on T-vectors
            # is a fraction of torch's, and the loop below is T - 1 small steps.
            C = projection_coefficients(gramian.detach().double().numpy(), order.numpy(), np)
            return torch.from_numpy(C.sum(axis=0) / T).to(gramian.dtype)
        G = gramian.detach().to(torch.float64 if gramian.dtype == torch.float64 else torch.float32)
        C = projection_coefficients(G, order.to(G.device, non_blocking=True), torch)
        return (C.sum(dim=0) / T).to(gramian.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        state["generator"] = self.generator.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.generator.set_state(state["generator"])


def visiting_orders(generator: torch.Generator, T: int) -> Tensor:
    """``(T, T - 1)`` (int64, CPU): row ``i`` is a uniformly random order of the tasks other
    than ``i``, drawn from ``generator`` (one ``T x T`` draw of sort keys)."""
    keys = torch.rand(T, T, generator=generator)
    keys.fill_diagonal_(2.0)  # self goes last, then is dropped
    return keys.argsort(dim=1)[:, : T - 1]


def projection_coefficients(G: Any, order: Any, xp: Any) -> Any:
    """PCGrad's projections in Gramian space: ``C`` ``(T, T)`` with ``g_i^PC = sum_k C_ik g_k``.

    Step ``k`` projects every ``g_i^PC`` away from ``g_j``, ``j = order[i, k]``, where they
    conflict: ``C[i, j] -= min(<g_i^PC, g_j>, 0) / ||g_j||^2``. The inner products
    ``M = C G`` are kept up to date by the same rank-one change per row
    (``M[i] -= c_i G[j]``), so a step costs ``O(T^2)``.

    Args:
        G: the Gramian ``(T, T)``, a NumPy array (``xp = numpy``) or a tensor (``xp = torch``).
        order: ``(T, T - 1)`` integer visiting orders (row ``i`` excludes ``i``).
        xp: ``numpy`` or ``torch``: the code is the same for both.

    Returns:
        ``C`` of the same kind as ``G``.
    """
    T = G.shape[0]
    rows = xp.arange(T) if xp is np else torch.arange(T, device=G.device)
    C = xp.zeros_like(G)
    C[rows, rows] = 1
    M = G + C  # a copy: C G with C = I
    sq_norms = G[rows, rows]
    for k in range(T - 1):
        j = order[:, k]
        dots = M[rows, j]  # <g_i^PC, g_j> for every i
        norm_j = sq_norms[j]
        positive = norm_j > 0
        coeff = xp.where((dots < 0) & positive, dots / xp.where(positive, norm_j, 1.0), 0.0)
        C[rows, j] -= coeff
        M -= coeff[:, None] * G[j]
    return C
