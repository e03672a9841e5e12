"""Accelerated proximal gradient (FISTA, Beck & Teboulle 2009) with adaptive restart
(O'Donoghue & Candes 2015) for ``min_W f(W) + h(W)``: ``f`` smooth with an ``L``-Lipschitz
gradient, ``h`` with a cheap proximal operator.

Written here rather than taken from a library: scikit-learn's solvers are private and
problem-specific, and the multi-task penalties need their own proximal operators.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass
class Solution:
    """The minimiser found, its objective, the iterations used and the last relative
    change."""

    W: Array
    objective: float
    iterations: int
    change: float


def fista(
    gradient: Callable[[Array], Array],
    objective: Callable[[Array], float],
    prox: Callable[[Array, float], Array],
    lipschitz: float,
    start: Array,
    max_iter: int,
    tol: float,
    measure: Callable[[Array], Array] | None = None,
) -> Solution:
    """Minimise ``F = f + h`` from ``start``.

    Args:
        gradient: ``W -> grad f(W)``, one pass over the data.
        objective: ``W -> F(W)`` (the restart test: momentum is dropped when ``F`` rises).
        prox: ``(V, step) -> argmin_W h(W) + ||W - V||^2 / (2 step)``.
        lipschitz: a Lipschitz constant of ``grad f`` (the step is ``1 / lipschitz``).
        max_iter, tol: stop when ``||m(W_k) - m(W_{k-1})|| <= tol max(1, ||m(W_k)||)``;
            reaching ``max_iter`` first warns (scikit-learn's ``ConvergenceWarning``).
        measure: ``m``, what the stopping rule compares (default: the variables
            themselves; the estimators compare their weights, which a decomposition such as
            ``W = L + S`` can reach while its parts still trade along a flat direction).
    """
    from sklearn.exceptions import ConvergenceWarning

    step = 1.0 / max(lipschitz, 1e-300)
    W = start.copy()
    Y, momentum = W.copy(), 1.0
    value = objective(W)
    change = np.inf
    for k in range(1, max_iter + 1):
        new = prox(Y - step * gradient(Y), step)
        new_value = objective(new)
        if new_value > value:  # adaptive restart: drop the momentum, take a plain step
            Y, momentum = W, 1.0
            new = prox(W - step * gradient(W), step)
            new_value = objective(new)
        next_momentum = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        Y = new + ((momentum - 1) / next_momentum) * (new - W)
        if measure is None:
            change = float(np.linalg.norm(new - W)) / max(1.0, float(np.linalg.norm(new)))
        else:
            now = measure(new)
            change = float(np.linalg.norm(now - measure(W))) / max(1.0, float(np.linalg.norm(now)))
        W, momentum, value = new, next_momentum, new_value
        if change <= tol:
            return Solution(W, value, k, change)
    warnings.warn(
        f"the proximal gradient solver stopped at max_iter={max_iter} with relative change "
        f"{change:.2e} > tol={tol:g}; raise max_iter or tol, or scale the inputs",
        ConvergenceWarning,
        stacklevel=3,
    )
    return Solution(W, value, max_iter, change)
