"""Small solvers over ``T x T`` Gramians.

Their loops branch at every step, so they run in float64 NumPy on the CPU after one ``T x T``
copy from the device: a ``T x T`` problem is solved faster there than by many tiny device
kernels, each needing a synchronisation for its branch (and NumPy's per-operation overhead is
a fraction of torch's on such small arrays). Every function takes and returns torch tensors;
results go back to the Gramian's device and dtype.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import torch
from scipy.optimize import nnls as scipy_nnls
from torch import Tensor

Array = np.ndarray


def prepare_gramian(G: Tensor) -> tuple[Array, float]:
    """The Gramian as float64 NumPy and its largest diagonal entry; raises if not finite."""
    H = G.detach().to("cpu", torch.float64).numpy()
    scale = float(np.abs(np.diag(H)).max()) if H.size else 0.0
    if not math.isfinite(scale) or not np.isfinite(H).all():
        raise ValueError("the Gramian is not finite; a task gradient is NaN or infinite")
    return H, scale


def input_precision(G: Tensor) -> float:
    """The relative rounding error of the Gramian's own dtype (``eps`` of float32 for a
    float32 or lower-precision Gramian). A Gramian computed in float32 is only positive
    semi-definite up to a few of these, relative to its largest entry, whatever precision
    a solver then works in; tolerances and degeneracy tests follow it."""
    return float(torch.finfo(G.dtype if G.dtype == torch.float64 else torch.float32).eps)


def as_weights(x: Array, G: Tensor) -> Tensor:
    """A solver's float64 NumPy result as a tensor on the Gramian's device, in its dtype
    (float32 unless the Gramian is float64)."""
    dtype = G.dtype if G.dtype == torch.float64 else torch.float32
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(G.device, dtype)


_CONTROLLER: Any = None

F = TypeVar("F", bound=Callable[..., Any])


def single_threaded_blas(fn: F) -> F:
    """Run ``fn`` with NumPy's and SciPy's BLAS/LAPACK limited to one thread.

    These solvers work on ``T x T`` matrices, where threads only cost; worse, OpenBLAS
    threads that spin after a call take the cores from torch's own threads (measured on the
    step-cost benchmark: the whole training step 3x slower at T = 32). torch is not affected.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _CONTROLLER
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        with _CONTROLLER.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return cast(F, wrapper)


@single_threaded_blas
def min_norm_simplex(G: Tensor, max_iter: int = 250, tol: float = 1e-12) -> Tensor:
    """Weights ``w`` on the simplex minimising ``w^T G w``: the min-norm point of the convex
    hull of the task gradients, which MGDA needs (Sener & Koltun 2018 use Frank-Wolfe).

    Solved exactly through non-negative least squares (:func:`_min_norm_nnls` with every
    task on the simplex: with ``A^T A = G`` scaled to a unit largest diagonal,
    ``u = argmin_{u >= 0} ||A u||^2 + (1^T u - 1)^2`` and ``w = u / sum(u)``); the result's
    optimality gap ``w^T G w - min_k (G w)_k`` is checked. Two tasks use the closed form of
    Sener & Koltun (Algorithm 1).

    Args:
        G: Gramian ``(T, T)``, symmetric positive semi-definite.
        max_iter: NNLS iteration limit, times ``T``.
        tol: accepted optimality gap, relative to the largest diagonal entry of ``G``.

    Returns:
        ``w`` ``(T,)``, ``w >= 0``, ``sum(w) = 1``.

    Raises:
        RuntimeError: NNLS did not converge, or its result misses the optimality condition.
    """
    T = G.shape[0]
    if T == 1:
        return as_weights(np.ones(1), G)
    H, scale = prepare_gramian(G)
    if scale == 0.0:
        return as_weights(np.full(T, 1.0 / T), G)
    H = H / scale
    if T == 2:  # closed form (Sener & Koltun 2018, Algorithm 1)
        denominator = H[0, 0] + H[1, 1] - 2 * H[0, 1]
        gamma = 0.5 if denominator <= 0 else min(1.0, max(0.0, (H[1, 1] - H[0, 1]) / denominator))
        return as_weights(np.array([gamma, 1 - gamma]), G)
    return as_weights(_min_norm_nnls(H, np.ones(T), max_iter, tol, "min-norm solver (NNLS)"), G)


def _min_norm_nnls(H: Array, a: Array, max_iter: int, tol: float, what: str) -> Array:
    """``x = argmin x^T H x`` over ``x >= 0`` with ``a^T x = 1`` (``a`` a 0/1 mask, ``H`` at
    unit scale), exactly, by one non-negative least-squares problem.

    With ``A^T A = H``, every minimiser ``u`` of ``||A u||^2 + (a^T u - 1)^2`` over
    ``u >= 0`` gives a minimiser ``x = u / a^T u``. For any feasible ``u`` with
    ``s = a^T u > 0`` and ``q = (u/s)^T H (u/s)``, the objective is ``s^2 q + (s - 1)^2 >=
    q / (1 + q)`` (equality at ``s = 1 / (1 + q)``), which increases with ``q``; so the least
    objective is ``lam / (1 + lam)`` with ``lam`` the least ``q``, reached exactly by the
    ``u`` whose ``x`` is a minimiser. (At the optimum ``(H x)_i >= lam a_i`` for every ``i``,
    with equality where ``x_i > 0``: that optimality gap is checked.) Lawson & Hanson's
    NNLS (scipy, compiled) is an exact active-set method.
    """
    return min_norm_from_factor(psd_factor(H, 1.0), a, max_iter, tol, what)


def min_norm_from_factor(A: Array, a: Array, max_iter: int, tol: float, what: str) -> Array:
    """:func:`_min_norm_nnls` given a factor ``A`` (``A^T A`` the Gramian at unit scale)
    instead of the Gramian (for callers that change the factor cheaply between calls)."""
    T = A.shape[1]
    E = np.vstack([A, a[None, :]])
    f = np.zeros(T + 1)
    f[-1] = 1.0
    try:
        u, _ = scipy_nnls(E, f, maxiter=max_iter * T)
    except RuntimeError as error:
        raise _not_converged(what, max_iter, T) from error
    total = float(a @ u)
    if not total > 0:
        raise RuntimeError(f"{what} returned zero weights; check the Gramian")
    x = u / total
    # Optimality is checked on the matrix NNLS solved, A^T A: the positive semi-definite part
    # of H (a float32 Gramian is indefinite by its rounding; that difference is the input's
    # precision, not the solver's error).
    Hx = E[:T].T @ (E[:T] @ x)
    lam = float(x @ Hx)
    gap = float((lam * a - Hx).max())
    if gap > max(tol, 1e-9):
        raise RuntimeError(
            f"{what}: optimality gap {gap:.2e} after convergence (T={T}); "
            "check the Gramian for NaN or a huge dynamic range"
        )
    result: Array = x
    return result


def _not_converged(what: str, max_iter: int, T: int) -> RuntimeError:
    return RuntimeError(
        f"{what} did not converge in {max_iter} iterations (T={T}); check the Gramian for "
        "NaN or a huge dynamic range"
    )


@single_threaded_blas
def lower_bounded_min_norm(G: Tensor, lower: Tensor, max_iter: int = 500) -> Tensor:
    """``v = argmin v^T G v`` subject to ``v >= lower``, exactly: Lawson & Hanson's NNLS
    (scipy) on ``x = v - lower >= 0`` with a factor ``A^T A = G`` (``min ||A (lower + x)||``).

    This is the projection used by dual-cone methods: with ``d = J^T v``, the KKT conditions
    give ``G v >= 0`` (so ``<d, g_t> >= 0`` for every task) and ``(G v)_t = 0`` wherever
    ``v_t > lower_t``. The factor is taken of ``G`` scaled to a unit largest diagonal entry
    (its positive semi-definite part), so a singular ``G`` factors too.

    Args:
        G: Gramian ``(T, T)``.
        lower: lower bounds ``(T,)`` (non-negative in the dual-cone methods).
        max_iter: NNLS iteration limit, times ``T``.

    Returns:
        ``v`` ``(T,)`` on ``G``'s device and dtype.

    Raises:
        RuntimeError: the iteration limit was reached.
    """
    return as_weights(
        _lower_bounded(*prepare_gramian(G), lower.detach().cpu().double().numpy(), max_iter), G
    )


@single_threaded_blas
def lower_bounded_min_norm_many(G: Tensor, lowers: Tensor, max_iter: int = 500) -> Tensor:
    """:func:`lower_bounded_min_norm` for each row of ``lowers`` ``(K, T)``, sharing one
    factorisation of the Gramian; returns ``(K, T)``."""
    H, scale = prepare_gramian(G)
    bounds = lowers.detach().cpu().double().numpy()
    if scale == 0.0:
        return as_weights(bounds, G)
    A = psd_factor(H, scale)
    return as_weights(np.stack([lower_bounded_from_factor(A, u, max_iter) for u in bounds]), G)


def psd_part(H: Array) -> Array:
    """The nearest positive semi-definite matrix to the symmetric ``H`` (negative eigenvalues
    set to zero): ``A^T A`` of its :func:`psd_factor`."""
    A = psd_factor(H, 1.0)
    out: Array = A.T @ A
    return out


def psd_factor(H: Array, scale: float) -> Array:
    """``A`` with ``A^T A`` the positive semi-definite part of ``H / scale`` (from the
    eigendecomposition, so a Gramian that is only positive semi-definite up to rounding, or
    singular, factors too; no ridge: a ridge of 1e-12 moved the dual-cone projections of
    rank-deficient Gramians by 1e-11 relative, far above float64's precision)."""
    # torch's eigh, not numpy's: numpy's threaded LAPACK competes with torch's threads for the
    # cores (measured: the whole training step became 3x slower).
    lam, V = torch.linalg.eigh(torch.from_numpy(H / scale))
    out: Array = (lam.clamp_min(0.0).sqrt()[:, None] * V.T).numpy()
    return out


def lower_bounded_from_factor(A: Array, u: Array, max_iter: int) -> Array:
    """``v = u + x`` with ``x = argmin ||A (u + x)||^2, x >= 0`` (Lawson & Hanson's NNLS,
    an exact active-set method, compiled in scipy)."""
    r = A @ u
    size = float(np.linalg.norm(r))
    if size == 0.0:
        return u.copy()
    # The cone x >= 0 is scale-free, so the right-hand side is brought to unit norm: scipy's
    # NNLS has absolute tolerances, and a tiny right-hand side (a zero task gradient, whose
    # factor column is rounding noise) gave a wrong answer (weights 0.02-0.07 off).
    try:
        y, _ = scipy_nnls(A, -r / size, maxiter=max_iter * A.shape[0])
    except RuntimeError as error:
        raise _not_converged("lower-bounded QP (NNLS)", max_iter, A.shape[0]) from error
    result: Array = u + size * y
    return result


def _lower_bounded(H: Array, scale: float, u: Array, max_iter: int) -> Array:
    if scale == 0.0:
        return u
    return lower_bounded_from_factor(psd_factor(H, scale), u, max_iter)


@single_threaded_blas
def alpha_fair_weights(G: Tensor, alpha: float = 1.0, max_iter: int = 100) -> Tensor:
    """``w > 0`` with ``(G w)_i = w_i^(-1/alpha)`` for every task: each task's directional
    derivative ``<g_i, d>`` (``d = J^T w``) equals its marginal utility. ``alpha = 1`` is the
    Nash bargaining solution of Nash-MTL, other ``alpha`` FairGrad's alpha-fairness.

    Solved by Newton's method with backtracking on the strictly convex
    ``f(w) = 1/2 w^T G w - sum_i h(w_i)``, ``h' (w) = w^(-1/alpha)``, whose stationary point is
    the solution. The Gramian is scaled to unit diagonal maximum, replaced by its positive
    semi-definite part (a float32 Gramian is indefinite by rounding) and given a ridge of
    ``1e-10``, so exactly opposed gradients (no bargaining solution) give large but finite
    weights whose direction is ~0. Float64 on the CPU.

    Raises:
        RuntimeError: Newton did not converge in ``max_iter`` iterations.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    H, scale = prepare_gramian(G)
    T = H.shape[0]
    if scale == 0.0:
        return as_weights(np.full(T, 1.0 / T), G)
    # The positive semi-definite part (a float32 Gramian is indefinite by its rounding, and
    # f is then not convex), plus the ridge.
    H = psd_part(H / scale) + 1e-10 * np.eye(T)
    p = 1.0 / alpha

    def f(w: Array) -> float:
        h = np.log(w) if alpha == 1.0 else w ** (1 - p) / (1 - p)
        return float(0.5 * w @ H @ w - h.sum())

    w = np.ones(T) / math.sqrt(T)
    for _ in range(max_iter):
        grad = H @ w - w ** (-p)
        # Relative to the size of the terms: H w is a difference of large numbers when the
        # weights grow (nearly opposed gradients), and cannot be more exact than that.
        size = max(float((w ** (-p)).max()), float((np.abs(H) @ w).max()))
        if float(np.abs(grad).max()) <= 1e-10 * size:
            # Undo the scaling: (G/s) w = w^-p  =>  G (w s^(-alpha/(1+alpha))) = (...)^-p.
            return as_weights(w * scale ** (-alpha / (1 + alpha)), G)
        step = -np.linalg.solve(H + np.diag(p * w ** (-p - 1)), grad)
        t = 1.0
        negative = step < 0
        if negative.any():
            t = min(1.0, 0.99 * float((-w[negative] / step[negative]).min()))
        current = f(w)
        slope = float(grad @ step)
        # Near the solution the predicted decrease is below the rounding of f: take the
        # Newton step as it is (the Armijo test cannot tell better from worse there).
        if -slope > 1e-12 * (1.0 + abs(current)):
            while f(w + t * step) > current + 1e-4 * t * slope and t > 1e-12:
                t *= 0.5
        w = w + t * step
    raise _not_converged("alpha-fair Newton solver", max_iter, T)


@single_threaded_blas
def simplex_cone_min_norm(
    G: Tensor, on_simplex: Tensor, max_iter: int = 500, tol: float = 1e-12
) -> Tensor:
    """``x = argmin x^T G x`` over ``x >= 0`` with ``sum(x[on_simplex]) = 1``: the
    min-norm point of ``conv{g_i : on_simplex} + cone{g_j : not on_simplex}``.

    This is the dual of primary/auxiliary MTL (reference text 03): main tasks on the simplex
    (a convex combination), auxiliary tasks with any non-negative weight. With no auxiliary
    task it is MGDA's problem; with one main task it is ``min ||g_0 + sum_j l_j g_j||``.
    Solved exactly by one non-negative least-squares problem (:func:`_min_norm_nnls`, the
    reduction of :func:`min_norm_simplex` with ``1`` replaced by the main tasks' mask), the
    Gramian scaled to a unit largest diagonal; the optimality gap is checked. Float64 on the
    CPU.

    Args:
        G: Gramian ``(T, T)``.
        on_simplex: boolean ``(T,)``, at least one ``True``.
        max_iter: NNLS iteration limit, times ``T``.
        tol: accepted optimality gap, relative to the largest diagonal entry of ``G``.

    Returns:
        ``x`` ``(T,)`` on ``G``'s device and dtype.

    Raises:
        RuntimeError: NNLS did not converge, or its result misses the optimality condition.
    """
    a = on_simplex.detach().cpu().numpy().astype(np.float64)
    if a.sum() < 1:
        raise ValueError("at least one task must be on the simplex (a main task)")
    H, scale = prepare_gramian(G)
    if scale == 0.0:
        x = a / a.sum()
        return as_weights(x, G)
    what = "primary/auxiliary QP (NNLS)"
    return as_weights(_min_norm_nnls(H / scale, a, max_iter, tol, what), G)


def project_simplex(v: Array) -> Array:
    """Euclidean projection of ``v`` ``(T,)`` onto the probability simplex (sort-based,
    Held, Wolfe & Crowder 1974; Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1
    k = np.arange(1, v.size + 1)
    rho = int(np.flatnonzero(u - css / k > 0).max())
    return np.clip(v - css[rho] / (rho + 1), 0, None)
