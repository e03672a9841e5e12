"""CAGrad: conflict-averse gradient descent."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy.optimize import brentq
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import (
    as_weights,
    input_precision,
    lower_bounded_from_factor,
    min_norm_from_factor,
    prepare_gramian,
    psd_factor,
    single_threaded_blas,
)


@register("cagrad")
class CAGrad(GramianWeighting):
    """Conflict-Averse Gradient descent (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021).

    Maximise the worst task's improvement within a ball around the mean gradient
    ``g_0 = J^T b`` (``b = 1/T``): ``max_d min_i <g_i, d>`` s.t. ``||d - g_0|| <= c ||g_0||``.
    Its dual gives ``w = argmin_{w in simplex} g_w^T g_0 + c ||g_0|| ||g_w||`` and
    ``d = (g_0 + c ||g_0|| g_w / ||g_w||) / (1 + c^2)`` (the paper code's ``rescale=1``), all
    on the Gramian (:func:`cagrad_weights`). ``c = 0`` is the mean gradient; for ``c >= 1``
    the update never conflicts with any task.

    When the dual's optimum has ``g_w = 0`` (the convex hull of the gradients holds 0, and
    no hull point points far enough against ``g_0``) the primal optimum is not unique and
    the formula's ``g_w / ||g_w||`` is undefined; the update is then the optimal direction
    closest to ``g_0``: its projection on the dual cone ``{d : J d >= 0}``, divided by
    ``1 + c^2``.

    Args:
        c: radius of the ball relative to ``||g_0||`` (0.4, the paper's MultiMNIST/NYUv2
            value).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"homogeneous", "order_invariant"})

    def __init__(self, c: float = 0.4) -> None:
        super().__init__()
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        self.c = c

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        return cagrad_weights(gramian, self.c)


@single_threaded_blas
def cagrad_weights(G: Tensor, c: float, max_iter: int = 500) -> Tensor:
    """CAGrad's weights ``v`` (the update is ``J^T v``) from the Gramian ``(T, T)``.

    The dual ``min_{w in simplex} <g_w, g_0> + R ||g_w||`` (``R = c ||g_0||``) is solved
    exactly through ``R ||x|| = min_{lam > 0} (R/2) (||x||^2 / lam + lam)``: for a fixed
    ``lam`` the problem in ``w`` is the min-norm point of the shifted hull
    ``conv{g_i + (lam / R) g_0}`` (one non-negative least-squares problem, exact), and the
    optimal ``lam`` is the root of ``||g_w(lam)|| = lam`` (the derivative of the convex outer
    function), found by Brent's method. If ``||g_w||`` at the optimum is below the Gramian's
    rounding (the degenerate case of :class:`CAGrad`), ``v`` is the dual-cone projection of
    ``g_0``: ``argmin_{v >= b} v^T G v``. Float64 on the CPU.

    Returns:
        ``v`` ``(T,)`` on ``G``'s device (float32 unless ``G`` is float64).

    Raises:
        RuntimeError: an inner NNLS did not converge.
    """
    T = G.shape[0]
    b = np.full(T, 1.0 / T)
    if c == 0:
        return as_weights(b, G)
    H, scale = prepare_gramian(G)
    floor = 16.0 * T * input_precision(G)  # squared norms (unit scale) below this are noise
    if scale == 0.0:
        return as_weights(b / (1 + c * c), G)
    H = H / scale
    A = psd_factor(H, 1.0)
    Ab = A @ b
    g0 = float(Ab @ Ab)
    if g0 <= floor:  # g_0 = 0: the ball is a point
        return as_weights(b / (1 + c * c), G)
    R = c * math.sqrt(g0)
    ones = np.ones(T)

    def inner(lam: float) -> tuple[np.ndarray, float]:
        shifted = A + (lam / R) * np.outer(Ab, ones)
        w = min_norm_from_factor(shifted, ones, max_iter, 1e-9, "CAGrad's inner problem (NNLS)")
        # ||g_w||^2 from the Gramian itself (the factor is of its PSD part only).
        return w, max(float(w @ H @ w), 0.0)

    def slope(lam: float) -> float:  # the outer derivative, up to a positive factor
        return 1.0 - inner(lam)[1] / (lam * lam)

    low = math.sqrt(floor)
    if slope(low) >= 0:  # optimum at ||g_w|| ~ 0: the degenerate case
        v = lower_bounded_from_factor(A, b, max_iter)
        return as_weights(v / (1 + c * c), G)
    lam = brentq(slope, low, 2.0, xtol=1e-14, rtol=1e-14, maxiter=200)
    w, gw_sq = inner(lam)
    v = b + (R / math.sqrt(gw_sq)) * w
    return as_weights(v / (1 + c * c), G)
