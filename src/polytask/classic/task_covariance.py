"""The task-covariance step shared by MTRL (Zhang & Yeung 2010) and, later, the federated
MOCHA (Smith et al. 2017): given the task weights, the task covariance that minimises
``tr(W^T Omega^{-1} W)`` over ``Omega >= 0, tr(Omega) = 1``."""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def omega_step(W: Array, eps: float = 1e-8) -> Array:
    """``Omega = (W W^T)^{1/2} / tr((W W^T)^{1/2})`` for task weights ``W`` ``(T, d)``: the
    closed-form minimiser of ``tr(W^T Omega^{-1} W)`` subject to ``Omega`` positive
    semidefinite with unit trace (Zhang & Yeung 2010, eq. 7). ``eps I`` is added inside the
    square root so that ``Omega`` stays invertible when the tasks' weights are degenerate
    (all zero at the start, or of lower rank than ``T``). Returns ``(T, T)``."""
    T = W.shape[0]
    values, vectors = np.linalg.eigh(W @ W.T + eps * np.eye(T))
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return root / np.trace(root)
