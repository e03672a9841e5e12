"""A dense two-phase simplex method for the small linear programmes of EPO.

EPO (Mahapatra & Rajan 2020) solves, at every step, a linear programme over the ``T`` task
weights with about ``T`` constraints. A general LP solver (HiGHS through scipy) spends about
1.5 ms per call on such a problem, nearly all of it in setting the problem up; a dense
tableau in float64 NumPy solves it in a fraction of that. The method is the textbook one
(Dantzig; see Bertsimas & Tsitsiklis, "Introduction to Linear Optimization", 1997, ch. 3):
phase 1 minimises the sum of artificial variables to find a feasible basis, phase 2 optimises
the objective from it; Bland's smallest-index rule (1977) for both the entering and the
leaving variable rules out cycling on degenerate programmes, so it always terminates.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def simplex_max(
    c: Array, A_ub: Array, b_ub: Array, tol: float = 1e-10, max_iter: int | None = None
) -> Array | None:
    """``argmax c^T w`` over ``w >= 0``, ``sum(w) = 1``, ``A_ub w <= b_ub``.

    Args:
        c: objective ``(n,)``.
        A_ub: inequality rows ``(m, n)`` (``m`` may be 0).
        b_ub: their right-hand sides ``(m,)``.
        tol: pivot and optimality tolerance (the data should be of order one: EPO scales its
            Gramian to a unit largest diagonal).
        max_iter: pivot limit per phase (default ``50 (m + n + 1)``; Bland's rule
            terminates long before on these sizes).

    Returns:
        An optimal ``w`` ``(n,)``, or ``None`` when the constraints admit no ``w`` (phase 1
        ends with a positive infeasibility, above ``1e-9``).

    Raises:
        RuntimeError: the pivot limit was reached (not expected; a sign of NaN input).
    """
    n = c.shape[0]
    A_ub = np.asarray(A_ub, dtype=np.float64).reshape(-1, n)
    b_ub = np.asarray(b_ub, dtype=np.float64).reshape(-1)
    m_ub = A_ub.shape[0]
    m = m_ub + 1
    if not (np.isfinite(c).all() and np.isfinite(A_ub).all() and np.isfinite(b_ub).all()):
        raise ValueError("the linear programme has NaN or infinite coefficients")
    limit = 50 * (m + n + 1) if max_iter is None else max_iter

    # Rows: A_ub w + s = b_ub (slack s >= 0) and 1^T w = 1, each with a non-negative
    # right-hand side (a row with b < 0 is negated). A row whose slack keeps coefficient +1
    # starts with the slack in the basis; the others get an artificial variable.
    rows = np.zeros((m, n + m_ub))
    rows[:m_ub, :n] = A_ub
    rows[:m_ub, n:] = np.eye(m_ub)
    rows[m_ub, :n] = 1.0
    rhs = np.concatenate([b_ub, [1.0]])
    negative = rhs < 0
    rows[negative] *= -1.0
    rhs[negative] *= -1.0
    needs_artificial = np.ones(m, dtype=bool)
    needs_artificial[:m_ub] = negative[:m_ub]
    artificial_rows = np.flatnonzero(needs_artificial)
    k = len(artificial_rows)
    width = n + m_ub + k
    tableau = np.zeros((m + 1, width + 1))
    tableau[:m, : n + m_ub] = rows
    tableau[artificial_rows, n + m_ub + np.arange(k)] = 1.0
    tableau[:m, -1] = rhs
    basis = n + np.arange(m)  # row i's slack ...
    basis[artificial_rows] = n + m_ub + np.arange(k)  # ... or its artificial variable

    # Phase 1: minimise the sum of the artificial variables.
    costs = np.zeros(width)
    costs[n + m_ub :] = 1.0
    _set_objective(tableau, basis, costs)
    _pivot_to_optimum(tableau, basis, width, tol, limit)
    if -tableau[-1, -1] > 1e-9:
        return None

    # Drive artificial variables left in the basis (at level 0) out, or drop their row when
    # it is redundant (a combination of the others).
    keep = np.ones(m, dtype=bool)
    for i in range(m):
        if basis[i] >= n + m_ub:
            candidates = np.flatnonzero(np.abs(tableau[i, : n + m_ub]) > tol)
            if len(candidates):
                _pivot(tableau, basis, i, int(candidates[0]))
            else:
                keep[i] = False
    tableau = np.delete(tableau, np.flatnonzero(~keep), axis=0)
    basis = basis[keep]
    tableau = np.delete(tableau, np.arange(n + m_ub, width), axis=1)

    # Phase 2: minimise -c^T w from the feasible basis.
    costs = np.zeros(n + m_ub)
    costs[:n] = -np.asarray(c, dtype=np.float64)
    _set_objective(tableau, basis, costs)
    _pivot_to_optimum(tableau, basis, n + m_ub, tol, limit)
    w = np.zeros(n + m_ub)
    w[basis] = tableau[:-1, -1]
    result: Array = np.clip(w[:n], 0.0, None)
    return result


def _set_objective(tableau: Array, basis: Array, costs: Array) -> None:
    """Write the reduced costs ``c - c_B^T B^-1 A`` and ``-c_B^T B^-1 b`` into the last row."""
    body = tableau[:-1]
    tableau[-1, :-1] = costs - costs[basis] @ body[:, :-1]
    tableau[-1, -1] = -costs[basis] @ body[:, -1]


def _pivot(tableau: Array, basis: Array, row: int, column: int) -> None:
    """Make ``column`` basic in ``row`` (Gauss-Jordan step on the whole tableau)."""
    tableau[row] /= tableau[row, column]
    factors = tableau[:, column].copy()
    factors[row] = 0.0
    tableau -= np.outer(factors, tableau[row])
    basis[row] = column


def _pivot_to_optimum(tableau: Array, basis: Array, width: int, tol: float, limit: int) -> None:
    """Minimise over the first ``width`` columns with Bland's rule until no reduced cost is
    negative."""
    for _ in range(limit):
        entering = np.flatnonzero(tableau[-1, :width] < -tol)
        if not len(entering):
            return
        column = int(entering[0])
        pivots = tableau[:-1, column]
        eligible = np.flatnonzero(pivots > tol)
        if not len(eligible):
            # Cannot happen here: sum(w) = 1 bounds every variable, slacks included.
            raise RuntimeError("the linear programme is unbounded; check its coefficients")
        ratios = tableau[eligible, -1] / pivots[eligible]
        ties = eligible[ratios <= ratios.min() + tol]
        row = int(ties[np.argmin(basis[ties])])  # Bland: the smallest basic index leaves
        _pivot(tableau, basis, row, column)
    raise RuntimeError(f"the simplex method reached its pivot limit ({limit}); check for NaN")
