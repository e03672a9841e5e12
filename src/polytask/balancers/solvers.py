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


def _step_to_boundary(x: Tensor, z: Tensor, free: Tensor, tol: float) -> tuple[Tensor, Tensor]:
    """Active-set step: move from the feasible ``x`` towards ``z`` until the first free
    variable reaches 0, and release the variables that did."""
    falling = free & (z <= tol)
    alpha = float((x[falling] / (x[falling] - z[falling])).min())
    x = x + alpha * (z - x)
    free = free & (x > tol)
    return torch.where(free, x, torch.zeros_like(x)), free


def _not_converged(what: str, max_iter: int, T: int) -> RuntimeError:
    return RuntimeError(
        f"{what} did not converge in {max_iter} iterations (T={T}); check the Gramian for "
        "NaN or a huge dynamic range"
    )


def lower_bounded_min_norm(G: Tensor, lower: Tensor, max_iter: int = 500) -> Tensor:
    """``v = argmin v^T G v`` subject to ``v >= lower``, exactly, by a primal active-set
    method (Lawson & Hanson's NNLS scheme applied to ``x = v - lower >= 0``).

    This is the projection used by dual-cone methods: with ``d = J^T v``, the KKT conditions
    give ``G v >= 0`` (so ``<d, g_t> >= 0`` for every task) and ``(G v)_t = 0`` wherever
    ``v_t > lower_t``. A ridge of ``1e-12`` times the largest diagonal entry keeps the
    systems solvable when ``G`` is singular. Runs in float64 on the CPU (see
    :func:`min_norm_simplex`).

    Args:
        G: Gramian ``(T, T)``.
        lower: lower bounds ``(T,)`` (non-negative in the dual-cone methods).
        max_iter: limit on the number of variables freed.

    Returns:
        ``v`` ``(T,)`` on ``G``'s device and dtype.

    Raises:
        RuntimeError: the iteration limit was reached.
    """
    out_dtype = G.dtype if G.dtype == torch.float64 else torch.float32
    H = G.detach().to("cpu", torch.float64)
    u = lower.detach().to("cpu", torch.float64)
    T = H.shape[0]
    scale = float(H.diagonal().abs().max())
    if not math.isfinite(scale):
        raise ValueError("the Gramian is not finite; a task gradient is NaN or infinite")
    if scale == 0.0:
        return lower.to(device=G.device, dtype=out_dtype)
    H = H / scale + 1e-12 * torch.eye(T, dtype=torch.float64)
    q = H @ u  # objective in x: 1/2 x^T H x + q^T x
    x = torch.zeros(T, dtype=torch.float64)
    free = torch.zeros(T, dtype=torch.bool)
    tol = 1e-12
    for _ in range(max_iter):
        grad = H @ x + q
        candidates = torch.where(~free, grad, torch.zeros_like(grad))
        j = int(torch.argmin(candidates))
        if float(candidates[j]) >= -tol:
            return (u + x).to(device=G.device, dtype=out_dtype)
        free[j] = True
        while True:
            idx = free.nonzero().flatten()
            z = torch.zeros(T, dtype=torch.float64)
            z[idx] = torch.linalg.solve(H[idx][:, idx], -q[idx])
            if bool((z[idx] > tol).all()):
                x = z
                break
            x, free = _step_to_boundary(x, z, free, tol)
    raise _not_converged("lower-bounded QP", max_iter, T)


def alpha_fair_weights(G: Tensor, alpha: float = 1.0, max_iter: int = 100) -> Tensor:
    """``w > 0`` with ``(G w)_i = w_i^(-1/alpha)`` for every task: each task's directional
    derivative ``<g_i, d>`` (``d = J^T w``) equals its marginal utility. ``alpha = 1`` is the
    Nash bargaining solution of Nash-MTL, other ``alpha`` FairGrad's alpha-fairness.

    Solved by Newton's method with backtracking on the strictly convex
    ``f(w) = 1/2 w^T G w - sum_i h(w_i)``, ``h' (w) = w^(-1/alpha)``, whose stationary point is
    the solution. The Gramian is scaled to unit diagonal maximum and given a ridge of
    ``1e-10``, so exactly opposed gradients (no bargaining solution) give large but finite
    weights whose direction is ~0. Float64 on the CPU.

    Raises:
        RuntimeError: Newton did not converge in ``max_iter`` iterations.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    out_dtype = G.dtype if G.dtype == torch.float64 else torch.float32
    H = G.detach().to("cpu", torch.float64)
    T = H.shape[0]
    scale = float(H.diagonal().abs().max())
    if not math.isfinite(scale):
        raise ValueError("the Gramian is not finite; a task gradient is NaN or infinite")
    if scale == 0.0:
        return torch.full((T,), 1.0 / T, dtype=out_dtype, device=G.device)
    H = H / scale + 1e-10 * torch.eye(T, dtype=torch.float64)
    p = 1.0 / alpha

    def h(w: Tensor) -> Tensor:
        return torch.log(w) if alpha == 1.0 else w ** (1 - p) / (1 - p)

    def f(w: Tensor) -> float:
        return float(0.5 * w @ H @ w - h(w).sum())

    w = torch.ones(T, dtype=torch.float64) / math.sqrt(T)
    for _ in range(max_iter):
        grad = H @ w - w ** (-p)
        # Relative to the size of the terms: H w is a difference of large numbers when the
        # weights grow (nearly opposed gradients), and cannot be more exact than that.
        size = max(float((w ** (-p)).max()), float((H.abs() @ w).max()))
        if float(grad.abs().max()) <= 1e-10 * size:
            # Undo the scaling: (G/s) w = w^-p  =>  G (w s^(-alpha/(1+alpha))) = (...)^-p.
            factor = scale ** (-alpha / (1 + alpha))
            return (w * factor).to(device=G.device, dtype=out_dtype)
        hessian = H + torch.diag(p * w ** (-p - 1))
        step = -torch.linalg.solve(hessian, grad)
        t = 1.0
        negative = step < 0
        if bool(negative.any()):
            t = min(1.0, 0.99 * float((-w[negative] / step[negative]).min()))
        current = f(w)
        slope = float(grad @ step)
        # Near the solution the predicted decrease is below the rounding of f: take the
        # Newton step as it is (the Armijo test cannot tell better from worse there).
        if -slope > 1e-12 * (1.0 + abs(current)):
            while f(w + t * step) > current + 1e-4 * t * slope and t > 1e-12:
                t *= 0.5
        w = w + t * step
    raise RuntimeError(
        f"alpha-fair weights did not converge in {max_iter} Newton steps (T={T}); check the "
        "Gramian for NaN or a huge dynamic range"
    )


def simplex_cone_min_norm(G: Tensor, on_simplex: Tensor, max_iter: int = 500) -> Tensor:
    """``x = argmin x^T G x`` over ``x >= 0`` with ``sum(x[on_simplex]) = 1``: the
    min-norm point of ``conv{g_i : on_simplex} + cone{g_j : not on_simplex}``.

    This is the dual of primary/auxiliary MTL (reference text 03): main tasks on the simplex
    (a convex combination), auxiliary tasks with any non-negative weight. With no auxiliary
    task it is MGDA's problem; with one main task it is ``min ||g_0 + sum_j l_j g_j||``.
    Solved exactly by an active-set method whose inner systems carry the equality through a
    Lagrange multiplier (least squares when singular). Float64 on the CPU.

    Args:
        G: Gramian ``(T, T)``.
        on_simplex: boolean ``(T,)``, at least one ``True``.

    Returns:
        ``x`` ``(T,)`` on ``G``'s device and dtype.

    Raises:
        RuntimeError: the iteration limit was reached.
    """
    out_dtype = G.dtype if G.dtype == torch.float64 else torch.float32
    a = on_simplex.detach().to("cpu", torch.float64)
    if float(a.sum()) < 1:
        raise ValueError("at least one task must be on the simplex (a main task)")
    H = G.detach().to("cpu", torch.float64)
    T = H.shape[0]
    scale = float(H.diagonal().abs().max())
    if not math.isfinite(scale):
        raise ValueError("the Gramian is not finite; a task gradient is NaN or infinite")
    x = torch.zeros(T, dtype=torch.float64)
    mains = a.nonzero().flatten()
    if scale == 0.0:
        x[mains] = 1.0 / len(mains)
        return x.to(device=G.device, dtype=out_dtype)
    H = H / scale + 1e-12 * torch.eye(T, dtype=torch.float64)
    start = int(mains[torch.argmin(H.diagonal()[mains])])
    x[start] = 1.0
    free = torch.zeros(T, dtype=torch.bool)
    free[start] = True
    tol = 1e-12
    for _ in range(max_iter):
        Hx = H @ x
        # Multiplier of the equality: on free main tasks, (H x)_i + mu = 0.
        mu = -float(Hx[free & (a > 0)].mean())
        grad = Hx + mu * a
        candidates = torch.where(~free, grad, torch.zeros_like(grad))
        j = int(torch.argmin(candidates))
        if float(candidates[j]) >= -1e-10:
            return x.to(device=G.device, dtype=out_dtype)
        free[j] = True
        while True:
            idx = free.nonzero().flatten()
            k = len(idx)
            A = torch.zeros(k + 1, k + 1, dtype=torch.float64)
            A[:k, :k] = H[idx][:, idx]
            A[:k, k] = a[idx]
            A[k, :k] = a[idx]
            rhs = torch.zeros(k + 1, dtype=torch.float64)
            rhs[k] = 1.0
            solution = torch.linalg.lstsq(A, rhs.unsqueeze(1), driver="gelsd").solution
            z = torch.zeros(T, dtype=torch.float64)
            z[idx] = solution[:k, 0]
            if bool((z[idx] > tol).all()):
                x = z
                break
            x, free = _step_to_boundary(x, z, free, tol)
    raise _not_converged("primary/auxiliary QP", max_iter, T)


def project_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of ``v`` ``(T,)`` onto the probability simplex (sort-based,
    Held, Wolfe & Crowder 1974; Duchi et al. 2008)."""
    u, _ = torch.sort(v, descending=True)
    css = u.cumsum(0) - 1
    k = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    rho = int((u - css / k > 0).nonzero().max())
    theta = css[rho] / (rho + 1)
    return (v - theta).clamp_min(0)


def cagrad_weights(
    G: Tensor, c: float, start: Tensor | None = None, max_iter: int = 500, tol: float = 1e-10
) -> Tensor:
    """``w = argmin_{w in simplex} w^T G b + r sqrt(w^T G w)`` with ``b = 1/T`` and
    ``r = c ||g_0||`` (``g_0`` the mean gradient): CAGrad's inner problem (Liu et al. 2021).

    Accelerated projected gradient (FISTA with restarts and backtracking) in float64 on the
    CPU, started from ``start`` (the previous step's solution) when given.

    Returns:
        ``w`` ``(T,)`` in float64 on the CPU.
    """
    H = G.detach().to("cpu", torch.float64)
    T = H.shape[0]
    scale = float(H.diagonal().abs().max())
    if scale == 0.0 or not math.isfinite(scale):
        return torch.full((T,), 1.0 / T, dtype=torch.float64)
    H = H / scale
    b = torch.full((T,), 1.0 / T, dtype=torch.float64)
    Hb = H @ b
    r = c * float((b @ Hb).clamp_min(0).sqrt())

    def value_and_grad(w: Tensor) -> tuple[float, Tensor]:
        Hw = H @ w
        norm = float((w @ Hw).clamp_min(1e-30).sqrt())
        return float(w @ Hb) + r * norm, Hb + r * Hw / norm

    w = b.clone() if start is None else project_simplex(start.to(torch.float64))
    y, t, step = w.clone(), 1.0, 1.0
    best_value, _ = value_and_grad(w)
    for _ in range(max_iter):
        fy, gy = value_and_grad(y)
        while True:
            candidate = project_simplex(y - step * gy)
            diff = candidate - y
            fc, _ = value_and_grad(candidate)
            if fc <= fy + float(gy @ diff) + float(diff @ diff) / (2 * step) + 1e-15:
                break
            step *= 0.5
            if step < 1e-20:
                break
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        if fc > best_value:  # restart the momentum
            y, t = w.clone(), 1.0
            step *= 1.5
            continue
        change = float((candidate - w).abs().sum())
        y = candidate + (t - 1) / t_next * (candidate - w)
        w, t, best_value = candidate, t_next, fc
        step *= 1.1
        if change < tol:
            break
    return w
