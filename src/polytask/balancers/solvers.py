"""Small solvers over ``T x T`` Gramians, in torch on the Gramian's device."""

from __future__ import annotations

import torch
from torch import Tensor


def two_task_min_norm(g11: Tensor, g12: Tensor, g22: Tensor) -> Tensor:
    """``gamma`` minimising ``||gamma g1 + (1 - gamma) g2||^2`` over ``[0, 1]``.

    Closed form (Sener & Koltun 2018, Algorithm 1):
    ``gamma = clip((g22 - g12) / (g11 + g22 - 2 g12), 0, 1)``; ``0.5`` when ``g1 = g2``.
    """
    denominator = g11 + g22 - 2 * g12
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    gamma = ((g22 - g12) / safe).clamp(0, 1)
    return torch.where(denominator > 0, gamma, torch.full_like(gamma, 0.5))


def min_norm_simplex(
    G: Tensor, max_iter: int = 250, tol: float = 1e-6, check_every: int = 10
) -> Tensor:
    """Weights ``w`` on the simplex minimising ``w^T G w`` (the min-norm point of the convex
    hull of the task gradients), by Frank-Wolfe with exact line search (Sener & Koltun 2018,
    Algorithm 2, written on the Gramian).

    Each iteration moves towards the vertex ``e_t`` with the smallest ``(G w)_t`` by the
    closed-form step of :func:`two_task_min_norm`. Starts from the best pair of tasks when
    ``T > 2`` is small, from uniform weights otherwise. Convergence is checked every
    ``check_every`` iterations (one device synchronisation each), on the change in ``w``.

    Args:
        G: Gramian ``(T, T)``, symmetric positive semi-definite.
        max_iter: iteration limit (250, as in the paper's code).
        tol: stop when the L1 change of ``w`` over ``check_every`` iterations is below it.

    Returns:
        ``w`` ``(T,)``, ``w >= 0``, ``sum(w) = 1``. Exact for ``T <= 2``.
    """
    T = G.shape[0]
    dtype = G.dtype if G.dtype == torch.float64 else torch.float32
    G = G.to(dtype)
    if T == 1:
        return torch.ones(1, dtype=dtype, device=G.device)
    # Rescale for numerical range: the minimiser is invariant to a positive scale of G.
    scale = G.diagonal().abs().max()
    G = G / torch.where(scale > 0, scale, torch.ones_like(scale))
    if T == 2:
        gamma = two_task_min_norm(G[0, 0], G[0, 1], G[1, 1])
        return torch.stack([gamma, 1 - gamma])
    w = _best_pair_start(G)
    previous = w
    for iteration in range(1, max_iter + 1):
        Gw = G @ w
        t = torch.argmin(Gw)
        a = w @ Gw  # ||v||^2
        b = Gw[t]  # <v, g_t>
        c = G[t, t]
        denominator = a + c - 2 * b
        safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        step = torch.where(denominator > 0, ((a - b) / safe).clamp(0, 1), torch.zeros_like(a))
        w = (1 - step) * w
        w = w.index_add(0, t.reshape(1), step.reshape(1))
        if iteration % check_every == 0:
            if float((w - previous).abs().sum()) < tol:
                break
            previous = w
    return w


def _best_pair_start(G: Tensor) -> Tensor:
    """Uniform weights, or for ``T <= 32`` the best two-task min-norm point (paper's start)."""
    T = G.shape[0]
    if T > 32:
        return torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device)
    diag = G.diagonal()
    g11 = diag[:, None].expand(T, T)
    g22 = diag[None, :].expand(T, T)
    gamma = two_task_min_norm(g11, G, g22)
    norms = gamma**2 * g11 + (1 - gamma) ** 2 * g22 + 2 * gamma * (1 - gamma) * G
    off = torch.eye(T, dtype=torch.bool, device=G.device)
    norms = norms.masked_fill(off, float("inf"))
    flat = torch.argmin(norms)
    i, j = flat // T, flat % T
    w = torch.zeros(T, dtype=G.dtype, device=G.device)
    w = w.index_put((i.reshape(1),), gamma[i, j].reshape(1))
    return w.index_put((j.reshape(1),), (1 - gamma[i, j]).reshape(1), accumulate=True)
