"""IMTL-G: the update whose projections on every unit task gradient are equal."""

from __future__ import annotations

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register


@register("imtl_g")
class IMTLG(GramianWeighting):
    """The gradient-balance part of IMTL (Liu et al., "Towards Impartial Multi-task
    Learning", ICLR 2021): find ``d = sum_t alpha_t g_t`` with ``sum_t alpha_t = 1`` whose
    projections on the unit gradients ``u_t = g_t / ||g_t||`` are all equal. The closed form
    ``alpha_{2:T} = g_1 U^T (D U^T)^{-1}`` with ``D`` the rows ``g_1 - g_t`` and ``U`` the rows
    ``u_1 - u_t`` is written on the Gramian (no coordinates needed).

    The weights sum to 1 (mean scale). A task with a zero gradient is left out (weight 0);
    if ``D U^T`` is singular the least-squares solution is used.

    Args:
        eps: gradients with norm below ``eps`` times the largest count as zero (1e-12).
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64)
        T = G.shape[0]
        norms = G.diagonal().clamp_min(0).sqrt()
        keep = norms > self.eps * float(norms.max()) if float(norms.max()) > 0 else norms > 0
        weights = torch.zeros(T, dtype=torch.float64)
        idx = keep.nonzero().flatten()
        if idx.numel() == 0:
            return torch.full((T,), 1.0 / T, dtype=gramian.dtype, device=gramian.device)
        if idx.numel() == 1:
            weights[idx] = 1.0
            return weights.to(gramian.device, gramian.dtype)
        H, n = G[idx][:, idx], norms[idx]
        # <g_i, u_j> = H_ij / n_j.
        P = H / n[None, :]
        first = P[0, 0] - P[0, 1:]  # g_1 . (u_1 - u_j)
        # (g_1 - g_i) . (u_1 - u_j) for i, j >= 2
        M = P[0, 0] - P[0, 1:][None, :] - P[1:, 0][:, None] + P[1:, 1:]
        alpha_rest = torch.linalg.lstsq(M.T, first.unsqueeze(1)).solution.squeeze(1)
        weights[idx] = torch.cat([(1 - alpha_rest.sum()).reshape(1), alpha_rest])
        return weights.to(gramian.device, gramian.dtype)
