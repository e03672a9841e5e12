"""IMTL-G: the update whose projections on every unit task gradient are equal."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import input_precision


@register("imtl_g")
class IMTLG(GramianWeighting):
    """The gradient-balance part of IMTL (Liu et al., "Towards Impartial Multi-task
    Learning", ICLR 2021): find ``d = sum_t alpha_t g_t`` with ``sum_t alpha_t = 1`` whose
    projections on the unit gradients ``u_t = g_t / ||g_t||`` are all equal. The closed form
    ``alpha_{2:T} = g_1 U^T (D U^T)^{-1}`` with ``D`` the rows ``g_1 - g_t`` and ``U`` the rows
    ``u_1 - u_t`` is written on the Gramian (no coordinates needed).

    The weights sum to 1 (mean scale). A task with a zero gradient is left out (weight 0).
    When the equations are singular (parallel gradients), the solution closest to the mean
    weights ``1/T`` is used, so the result does not depend on task order.

    Args:
        eps: gradients with norm below ``eps`` times the largest count as zero (1e-12).
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {"homogeneous", "mean_when_identical", "order_invariant"}
    )

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64)
        T = G.shape[0]
        top = float(G.diagonal().max()) if T else 0.0
        if top > 0:
            G = G / top  # the weights do not depend on the scale; the equations do
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
        weights[idx] = _equal_projection_weights(H, n, input_precision(gramian))
        return weights.to(gramian.device, gramian.dtype)


def _equal_projection_weights(H: Tensor, n: Tensor, precision: float) -> Tensor:
    """``alpha`` with ``sum(alpha) = 1`` and ``<d, u_1> = <d, u_t>`` for every ``t``
    (``d = sum_s alpha_s g_s``), from the Gramian ``H`` of non-zero gradients with norms ``n``.

    The paper's closed form solves the same equations with ``alpha_1 = 1 - sum(alpha_rest)``;
    it fails when they are singular (parallel gradients: every ``d`` on their line has equal
    projections) and its least-squares fallback then depends on task order. Here the
    equations are solved for the offset from the uniform ``1/T`` with the least norm
    (pseudo-inverse, singular values below the input's precision dropped): the unique
    solution when there is one, and otherwise the solution closest to the mean, which does
    not depend on task order (the solution set does not)."""
    T = H.shape[0]
    P = H / n[None, :]  # <g_s, u_t> = H_st / n_t
    # Row t-1: sum_s alpha_s (<g_s, u_1> - <g_s, u_t>) = 0, for t = 2..T; last row: sum = 1.
    cutoff = math.sqrt(T * precision)
    differences = (P[:, :1] - P[:, 1:]).T
    # Rows equilibrated (their right-hand side is 0): the equations of nearly parallel
    # gradients are small, and next to the row of ones they would lose digits.
    # Rows below the Gramian's rounding (exactly parallel gradients) say nothing: dropped.
    sizes = differences.norm(dim=1, keepdim=True)
    differences = (differences / sizes.clamp_min(1e-300))[sizes.squeeze(1) > cutoff]
    system = torch.cat([differences, torch.ones(1, T, dtype=H.dtype) / math.sqrt(T)])
    uniform = torch.full((T,), 1.0 / T, dtype=H.dtype)
    residual = -system @ uniform
    residual[-1] = 0.0  # the weights' sum stays 1
    return uniform + torch.linalg.pinv(system, rtol=cutoff) @ residual
