"""Small solvers over ``T x T`` Gramians, in torch on the Gramian's device."""

from __future__ import annotations

import math

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


def min_norm_simplex(G: Tensor, max_iter: int = 250, tol: float = 1e-12) -> Tensor:
    """Weights ``w`` on the simplex minimising ``w^T G w``: the min-norm point of the convex
    hull of the task gradients, which MGDA needs (Sener & Koltun 2018 use Frank-Wolfe).

    Solved exactly by Wolfe's min-norm-point algorithm (P. Wolfe, "Finding the nearest point
    in a polytope", Mathematical Programming 11, 1976), written on the Gramian: it keeps an
    affinely independent set ``S`` of tasks ("corral") and the weights of the affine min-norm
    point of ``S``; a major cycle adds the task ``j = argmin_k (G w)_k`` while the optimality
    gap ``w^T G w - (G w)_j`` is positive, minor cycles drop tasks whose affine weight turns
    non-positive. It terminates in finitely many steps (plain Frank-Wolfe converges only
    sublinearly and zig-zags on rank-deficient Gramians).

    The branchy loop runs in float64 on the CPU (one ``T x T`` copy from the device): a
    ``T x T`` problem is solved faster there than by many tiny device kernels, each needing a
    synchronisation for its branch. The result is returned on ``G``'s device and dtype.

    Args:
        G: Gramian ``(T, T)``, symmetric positive semi-definite.
        max_iter: limit on major cycles (each adds one task; ``T`` suffice in exact arithmetic).
        tol: optimality tolerance relative to the largest diagonal entry of ``G``.

    Returns:
        ``w`` ``(T,)``, ``w >= 0``, ``sum(w) = 1``.

    Raises:
        RuntimeError: the iteration limit was reached before the optimality gap closed.
    """
    T = G.shape[0]
    out_dtype = G.dtype if G.dtype == torch.float64 else torch.float32
    H = G.detach().to("cpu", torch.float64)
    scale = float(H.diagonal().abs().max())
    if T == 1:
        return torch.ones(1, dtype=out_dtype, device=G.device)
    if not math.isfinite(scale):
        raise ValueError("the Gramian is not finite; a task gradient is NaN or infinite")
    if scale == 0.0:
        return torch.full((T,), 1.0 / T, dtype=out_dtype, device=G.device)
    H = H / scale
    if T == 2:
        gamma = two_task_min_norm(H[0, 0], H[0, 1], H[1, 1])
        w = torch.stack([gamma, 1 - gamma])
        return w.to(device=G.device, dtype=out_dtype)
    corral = [int(torch.argmin(H.diagonal()))]
    lam = torch.ones(1, dtype=torch.float64)
    for _ in range(max_iter):
        x_dot = lam @ H[corral]  # <x, g_k> for every task k
        j = int(torch.argmin(x_dot))
        gap = float(lam @ x_dot[corral]) - float(x_dot[j])
        if gap <= tol or j in corral:
            break
        corral.append(j)
        lam = torch.cat([lam, lam.new_zeros(1)])
        while True:  # minor cycles
            alpha = _affine_min_norm(H[corral][:, corral])
            if bool((alpha > 1e-15).all()):
                lam = alpha
                break
            falling = (alpha <= 1e-15) & (lam - alpha > 0)
            theta = float((lam[falling] / (lam[falling] - alpha[falling])).min())
            lam = (1 - theta) * lam + theta * alpha
            keep = lam > 1e-15
            corral = [c for c, k in zip(corral, keep.tolist(), strict=True) if k]
            lam = lam[keep]
    else:
        raise RuntimeError(
            f"min-norm solver did not converge in {max_iter} major cycles (T={T}); raise "
            "max_iter or check the Gramian for NaN or huge dynamic range"
        )
    w = torch.zeros(T, dtype=torch.float64)
    w[corral] = lam
    w = w.clamp_min(0)
    return (w / w.sum()).to(device=G.device, dtype=out_dtype)


def _affine_min_norm(H: Tensor) -> Tensor:
    """Weights ``a`` (``sum a = 1``) of the min-norm point of the affine hull: solves
    ``[[H, 1], [1^T, 0]] [a; mu] = [0; 1]`` (least squares if near-singular)."""
    k = H.shape[0]
    A = H.new_zeros(k + 1, k + 1)
    A[:k, :k] = H
    A[:k, k] = 1
    A[k, :k] = 1
    b = H.new_zeros(k + 1)
    b[k] = 1
    solution = torch.linalg.lstsq(A, b.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    return solution[:k]
