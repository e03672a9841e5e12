"""The properties a balancer can declare, each with the assertion that checks it.

A method lists the names it guarantees in its class attribute ``properties``;
:func:`polytask.testing.check_balancer` applies exactly those assertions over generated
Jacobians (:mod:`polytask.testing.inputs`). Each assertion returns ``None`` when the property
holds on the input and a message saying how it fails otherwise.

For gradient methods the checked object is the update direction ``d`` (``J^T w`` for a
Gramian weighting, the aggregation for a Jacobian method); for loss weightings, the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from polytask.balancers.base import Balancer
from polytask.gradients.gramian import gramian

Factory = Callable[[int], Balancer]
"""Builds a fresh balancer for ``T`` tasks."""


def bound(balancer: Balancer, T: int) -> Balancer:
    """``balancer`` bound to tasks ``t0 .. t{T-1}``."""
    balancer.bind([f"t{i}" for i in range(T)])
    return balancer


def direction(balancer: Balancer, J: Tensor, losses: Tensor | None = None) -> Tensor:
    """The update direction ``(P,)`` a gradient method makes of the Jacobian ``(T, P)``
    (the Gramian is formed as the engine forms it; ``losses`` default to ones)."""
    return combination(balancer, J, losses)[0]


def combination(
    balancer: Balancer, J: Tensor, losses: Tensor | None = None
) -> tuple[Tensor, float]:
    """The direction and the size of what it combines: ``sum_t |w_t| ||g_t||`` for a
    Gramian weighting (at least ``||d||``). Rounding errors in ``d`` are relative to that
    size: a direction that cancels large weighted gradients down to ~0 is exact only up to
    the size of the terms."""
    T = J.shape[0]
    bound(balancer, T)
    if losses is None:
        losses = torch.ones(T, dtype=J.dtype)
    if balancer.needs == "gramian":
        w = balancer.gramian_weights(gramian([J]), losses).to(J.dtype)
        d = J.T @ w
        terms = float((w.double().abs() * J.double().norm(dim=1)).sum())
        return d, max(terms, float(d.double().norm()))
    if balancer.needs == "jacobian":
        d = balancer.aggregate(J)
        return d, max(float(J.double().norm()), float(d.double().norm()))
    raise TypeError(f"{type(balancer).__name__} is a loss weighting: it has no direction")


def _tol(values: Tensor, size: float) -> float:
    """``1000 T eps(dtype) size`` (``T = values.shape[0]``, the number of tasks): the
    tolerance of a quantity of that size from a ``T x T`` solver in ``values``' precision."""
    return 1000.0 * values.shape[0] * float(torch.finfo(values.dtype).eps) * size


def losses_of(J: Tensor) -> Tensor:
    """Non-negative losses ``(T,)`` of the same scale as the Jacobian's rows (for loss
    weightings and for methods that read losses as well)."""
    return J.abs().mean(dim=1) + 0.01 * J.abs().max()


def _gap(a: Tensor, b: Tensor) -> float:
    return float((a.double() - b.double()).norm())


def non_conflicting(make: Factory, J: Tensor) -> str | None:
    """No task's loss increases to first order: ``J d >= 0``."""
    d, size = combination(make(J.shape[0]), J)
    worst = float((J.double() @ d.double()).min())
    tol = _tol(J, size) * float(J.double().norm())
    return f"min (J d) = {worst:.3e} < -{tol:.1e}" if worst < -tol else None


def _permutation(T: int) -> Tensor:
    """A permutation that moves every task (for ``T >= 2``)."""
    flipped = torch.arange(T).flip(0)
    return flipped if T == 2 else torch.roll(flipped, 1)


def order_invariant(make: Factory, J: Tensor) -> str | None:
    """Permuting the tasks permutes the weights and leaves the direction unchanged."""
    T = J.shape[0]
    perm = _permutation(T)
    probe = make(T)
    if probe.needs == "losses":
        losses = losses_of(J)
        w = bound(probe, T).loss_weights(losses)
        wp = bound(make(T), T).loss_weights(losses[perm])
        gap, tol = _gap(w[perm], wp), _tol(J, 1.0)
    else:
        d, size = combination(probe, J, losses_of(J))
        dp, size_p = combination(make(T), J[perm], losses_of(J)[perm])
        gap, tol = _gap(d, dp), _tol(J, max(size, size_p))
    return f"permuted tasks change the result by {gap:.3e} > {tol:.1e}" if gap > tol else None


def homogeneous(make: Factory, J: Tensor) -> str | None:
    """Positively homogeneous: ``d(c J) = c d(J)`` for ``c > 0`` (scaling every loss scales
    the update)."""
    T, c = J.shape[0], 3.0
    d, size = combination(make(T), J)
    dc, size_c = combination(make(T), c * J)
    gap, tol = _gap(dc, c * d), _tol(J, max(c * size, size_c))
    return f"d(3J) - 3 d(J) = {gap:.3e} > {tol:.1e}" if gap > tol else None


def linear_under_scaling(make: Factory, J: Tensor) -> str | None:
    """Linear under scaling of the rows (Quinton & Rey 2024, torchjd):
    ``d(diag(a c1 + b c2) J) = a d(diag(c1) J) + b d(diag(c2) J)`` for ``c1, c2 > 0`` and
    ``a, b >= 0`` (the update is a fixed combination of the gradients, whatever their
    scales)."""
    T = J.shape[0]
    g = torch.Generator().manual_seed(0)
    c1, c2 = torch.rand(2, T, generator=g, dtype=torch.float64) + 0.1
    a, b = 0.7, 1.9
    rows = [c1, c2, a * c1 + b * c2]
    parts = [combination(make(T), (c[:, None] * J.double()).to(J.dtype)) for c in rows]
    expected = a * parts[0][0].double() + b * parts[1][0].double()
    gap = _gap(parts[2][0], expected)
    tol = _tol(J, max(a * parts[0][1] + b * parts[1][1], parts[2][1]))
    return f"d differs from the combination by {gap:.3e} > {tol:.1e}" if gap > tol else None


def _strongly_stationary_matrix(J: Tensor) -> bool:
    """Whether ``J^T w = 0`` for some ``w > 0``, up to ``J``'s precision: the least
    ``||J^T w||_1`` over ``w >= 1`` (the cone is scale-free, so ``w >= 1`` stands for
    ``w > 0``), rows scaled to unit norm, by a linear programme; rounding of a float32
    rank-deficient ``J`` must not turn a stationary matrix into a non-stationary one."""
    from scipy.optimize import linprog

    A = J.double()
    A = (A / A.norm(dim=1, keepdim=True).clamp_min(1e-300)).numpy()
    T, P = A.shape
    # Variables: w (T), then the residual's positive and negative parts (P each).
    cost = [0.0] * T + [1.0] * (2 * P)
    equality = np.hstack([A.T, -np.eye(P), np.eye(P)])
    bounds = [(1.0, None)] * T + [(0.0, None)] * (2 * P)
    result = linprog(cost, A_eq=equality, b_eq=np.zeros(P), bounds=bounds, method="highs")
    if result.status != 0:
        raise RuntimeError(f"the stationarity programme failed: {result.message}")
    slack = _tol(J, T)
    return bool(result.fun <= slack)


def strongly_stationary(make: Factory, J: Tensor) -> str | None:
    """``d = 0`` only if some strictly positive combination of the gradients is 0 (checked
    where none is, decided by a feasibility programme: there ``d`` must not vanish)."""
    T = J.shape[0]
    if float(J.double().abs().max()) == 0.0 or _strongly_stationary_matrix(J):
        return None
    d, _ = combination(make(T), J)
    # Against ||J||: equal weights added to opposed rows inflate sum |w_t| ||g_t|| without
    # changing d.
    norm, floor = float(d.double().norm()), _tol(J, float(J.double().norm()))
    return f"d = 0 (norm {norm:.3e}) though no positive combination is 0" if norm <= floor else None


def scale_invariant(make: Factory, J: Tensor) -> str | None:
    """Invariant under scaling: ``d(c J) = d(J)`` for ``c > 0``."""
    T = J.shape[0]
    d, size = combination(make(T), J)
    dc, size_c = combination(make(T), 3.0 * J)
    gap, tol = _gap(dc, d), _tol(J, max(size, size_c))
    return f"d(3J) - d(J) = {gap:.3e} > {tol:.1e}" if gap > tol else None


def mean_without_conflict(make: Factory, J: Tensor) -> str | None:
    """The mean gradient when no two task gradients conflict (checked on ``|J|``, whose
    rows have non-negative inner products)."""
    A = J.abs()
    d, size = combination(make(A.shape[0]), A)
    gap, tol = _gap(d, A.mean(dim=0)), _tol(A, size)
    return f"d differs from the mean by {gap:.3e} > {tol:.1e}" if gap > tol else None


def mean_when_identical(make: Factory, J: Tensor) -> str | None:
    """The common gradient when every task has the same gradient (``J`` with all rows equal
    to its first)."""
    same = J[:1].expand_as(J).clone()
    d, size = combination(make(J.shape[0]), same)
    gap, tol = _gap(d, J[0]), _tol(same, size)
    return f"d differs from the common gradient by {gap:.3e} > {tol:.1e}" if gap > tol else None


def weights_sum_to_one(make: Factory, J: Tensor) -> str | None:
    """Loss weights that sum to 1 (the mean scale)."""
    T = J.shape[0]
    w = bound(make(T), T).loss_weights(losses_of(J))
    gap = abs(float(w.double().sum()) - 1.0)
    tol = _tol(w, 1.0)
    return f"weights sum to {float(w.sum()):.9g}" if gap > tol else None


def loss_scale_invariant(make: Factory, J: Tensor) -> str | None:
    """Multiplying one task's loss by ``c > 0`` leaves the update unchanged: every
    ``w_t L_t`` of a loss weighting, the direction ``d`` of a gradient method (whose row
    ``g_t`` is multiplied by ``c`` too)."""
    T = J.shape[0]
    losses = losses_of(J)
    if make(T).needs != "losses":
        scaled_J = J.clone()
        scaled_J[0] = scaled_J[0] * 3.0
        scaled_losses = losses.clone()
        scaled_losses[0] = scaled_losses[0] * 3.0
        d, size = combination(make(T), J, losses)
        ds, size_s = combination(make(T), scaled_J, scaled_losses)
        gap, tol = _gap(ds, d), _tol(J, max(size, size_s))
        return f"d changes by {gap:.3e} > {tol:.1e}" if gap > tol else None
    if float(losses.abs().max()) == 0.0:
        return None
    scaled = losses.clone()
    scaled[0] = scaled[0] * 3.0
    a = bound(make(T), T).loss_weights(losses) * losses
    b = bound(make(T), T).loss_weights(scaled) * scaled
    tol = _tol(J, float(a.abs().max()))
    gap = float((a - b).abs().max())
    return f"w L changes by {gap:.3e} > {tol:.1e}" if gap > tol else None


def constant_weights(make: Factory, J: Tensor) -> str | None:
    """Weights that do not depend on the batch: the same for other losses (so exact under
    data parallelism, where each rank sees other losses)."""
    T = J.shape[0]
    losses = losses_of(J)
    other = losses.flip(0) * 3.0 + 1.0
    a = bound(make(T), T).loss_weights(losses)
    b = bound(make(T), T).loss_weights(other)
    gap = float((a.double() - b.double()).abs().max())
    return f"weights change by {gap:.3e} with the losses" if gap > _tol(a, 1.0) else None


@dataclass(frozen=True)
class Property:
    """A declarable property: its name, the method families it applies to and its check."""

    name: str
    families: tuple[str, ...]
    check: Callable[[Factory, Tensor], str | None]

    @property
    def meaning(self) -> str:
        """One line on what the property says (the check's docstring)."""
        return (self.check.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


GRADIENT = ("gramian", "jacobian")
PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in (
        Property("non_conflicting", GRADIENT, non_conflicting),
        Property("order_invariant", ("losses", *GRADIENT), order_invariant),
        Property("homogeneous", GRADIENT, homogeneous),
        Property("linear_under_scaling", GRADIENT, linear_under_scaling),
        Property("strongly_stationary", GRADIENT, strongly_stationary),
        Property("scale_invariant", GRADIENT, scale_invariant),
        Property("mean_without_conflict", GRADIENT, mean_without_conflict),
        Property("mean_when_identical", GRADIENT, mean_when_identical),
        Property("weights_sum_to_one", ("losses",), weights_sum_to_one),
        Property("loss_scale_invariant", ("losses", *GRADIENT), loss_scale_invariant),
        Property("constant_weights", ("losses",), constant_weights),
    )
}
"""Every property a balancer may declare, by name."""
