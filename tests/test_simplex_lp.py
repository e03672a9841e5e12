"""The dense simplex method behind EPO against HiGHS (scipy's linprog) as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from polytask.balancers.simplex_lp import simplex_max


def highs(c, A, b):
    n = len(c)
    result = linprog(
        -c, A_ub=A if len(A) else None, b_ub=b if len(A) else None, A_eq=np.ones((1, n)),
        b_eq=[1.0], bounds=[(0, None)] * n, method="highs",
    )  # fmt: skip
    return result


def check_against_highs(c, A, b) -> None:
    reference = highs(c, A, b)
    got = simplex_max(c, A, b)
    if reference.status == 2:  # infeasible
        assert got is None
        return
    assert reference.status == 0
    assert got is not None
    assert got.min() >= 0 and abs(got.sum() - 1) < 1e-9
    if len(A):
        assert (A @ got <= b + 1e-8).all()
    assert c @ got == pytest.approx(-reference.fun, abs=1e-8)


@pytest.mark.parametrize("seed", range(40))
def test_epo_shaped_programmes_match_highs(seed: int) -> None:
    """The programmes EPO builds: Gramian rows as constraints, of random rank, feasible or
    not (``G w >= Ca`` with random ``Ca``)."""
    rng = np.random.default_rng(seed)
    T = int(rng.integers(2, 33))
    J = rng.standard_normal((T, int(rng.integers(1, 2 * T))))
    G = J @ J.T
    G /= np.abs(np.diag(G)).max()
    a = rng.standard_normal(T)
    Ca = G @ a
    rows = np.flatnonzero(rng.random(T) < 0.6)
    A = -G[rows]
    b = -Ca[rows] if seed % 2 else np.zeros(len(rows))
    check_against_highs(Ca if seed % 3 else G.sum(0), A, b)


@pytest.mark.parametrize("seed", range(20))
def test_random_dense_programmes_match_highs(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, m = int(rng.integers(1, 12)), int(rng.integers(0, 12))
    check_against_highs(rng.standard_normal(n), rng.standard_normal((m, n)), rng.standard_normal(m))


def test_degenerate_programmes_terminate_and_are_exact() -> None:
    # Repeated and redundant rows, ties in every ratio test, a zero objective.
    A = np.array([[1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [2.0, -2.0, 0.0], [0.0, 0.0, 1.0]])
    b = np.array([0.0, 0.0, 0.0, 0.0])
    check_against_highs(np.array([1.0, 1.0, 1.0]), A, b)
    check_against_highs(np.zeros(3), A, b)
    w = simplex_max(np.array([1.0, 0.0, 0.0]), A, b)
    assert w is not None and np.allclose(w, [0.5, 0.5, 0.0])


def test_infeasible_and_invalid_programmes() -> None:
    # w_0 >= 2 is impossible on the simplex.
    assert simplex_max(np.ones(2), np.array([[-1.0, 0.0]]), np.array([-2.0])) is None
    with pytest.raises(ValueError, match="NaN"):
        simplex_max(np.array([np.nan, 1.0]), np.zeros((0, 2)), np.zeros(0))
