"""Gradient methods: hand-derived cases, and agreement with torchjd where it implements the
same method. The properties each method declares are checked over the whole registry by
``tests/test_balancer_checks.py`` (``polytask.testing.check_balancer``)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from polytask.balancers import create


def jacobian(T: int, rank: int, seed: int, P: int = 9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, rank, generator=g, dtype=torch.float64) @ torch.randn(
        rank, P, generator=g, dtype=torch.float64
    )


def direction(name: str, J: torch.Tensor, **options) -> torch.Tensor:
    balancer = create(name, **options)
    balancer.bind([f"t{i}" for i in range(J.shape[0])])
    losses = torch.ones(J.shape[0], dtype=torch.float64)
    return J.T @ balancer.gramian_weights(J @ J.T, losses)


# ---------------------------------------------------------------- hand-derived two-task cases
E1 = torch.tensor([1.0, 0.0], dtype=torch.float64)


def two(g1: list[float], g2: list[float]) -> torch.Tensor:
    return torch.tensor([g1, g2], dtype=torch.float64)


def test_upgrad_hand_case() -> None:
    # G = [[1, -1], [-1, 2]]: projections v_1 = (1, 1/2), v_2 = (1, 1); mean (1, 3/4).
    J = two([1.0, 0.0], [-1.0, 1.0])
    torch.testing.assert_close(direction("upgrad", J), J.T @ torch.tensor([1.0, 0.75]).double())


def test_dualproj_hand_case() -> None:
    # Mean (-0.5, 0.5) conflicts with g_1; v = argmin_{v >= 1/2} v^T G v = (1, 1/2).
    J = two([1.0, 0.0], [-2.0, 1.0])
    torch.testing.assert_close(direction("dualproj", J), torch.tensor([0.0, 0.5]).double())


def test_imtl_g_equal_projections() -> None:
    J = two([1.0, 0.0], [0.0, 2.0])  # d = (a1, 2 a2), equal projections: a1 = 2 a2
    torch.testing.assert_close(direction("imtl_g", J), torch.tensor([2 / 3, 2 / 3]).double())
    J = jacobian(4, 4, seed=2)
    d = direction("imtl_g", J)
    projections = J @ d / J.norm(dim=1)
    torch.testing.assert_close(projections, projections[0].expand(4), rtol=1e-8, atol=1e-10)


def test_nash_and_fairgrad_orthogonal_case() -> None:
    J = two([1.0, 0.0], [0.0, 2.0])  # G = diag(1, 4)
    torch.testing.assert_close(direction("nash_mtl", J), torch.tensor([1.0, 1.0]).double())
    for alpha in (0.5, 2.0):
        w2 = 4 ** (-alpha / (1 + alpha))
        torch.testing.assert_close(
            direction("fairgrad", J, alpha=alpha), torch.tensor([1.0, 2 * w2]).double()
        )


def test_aligned_mtl_orthogonal_case() -> None:
    # sigma = (1, 2), sigma_min = 1: w = diag(1, 1/2) (1/2, 1/2); d = (1/2, 1/2).
    J = two([1.0, 0.0], [0.0, 2.0])
    torch.testing.assert_close(direction("aligned_mtl", J), torch.tensor([0.5, 0.5]).double())


def test_gradvac_first_step_is_pcgrad_then_reaches_target() -> None:
    J = two([1.0, 0.0], [-1.0, 1.0])
    torch.testing.assert_close(direction("gradvac", J), direction("pcgrad", J))
    balancer = create("gradvac")
    balancer.bind(["a", "b"])
    balancer.targets = torch.tensor([[0.0, 0.5], [0.0, 0.0]], dtype=torch.float64)
    d = J.T @ balancer.gramian_weights(J @ J.T, torch.ones(2, dtype=torch.float64))
    # By hand: phi = cos(g_a, g_b) = -1/sqrt(2) < 0.5, so g_a' = g_a + c g_b with
    # c = ||g_a|| (0.5 sqrt(1 - phi^2) - phi sqrt(1 - 0.25)) / (||g_b|| sqrt(1 - 0.25));
    # task b (target 0) is projected as in PCGrad: g_b' = g_b + g_a.
    phi = -1 / math.sqrt(2)
    root = math.sqrt(0.75)
    c = (0.5 * math.sqrt(1 - phi**2) - phi * root) / (math.sqrt(2) * root)
    g_a = J[0] + c * J[1]
    torch.testing.assert_close(d, (g_a + J[0] + J[1]) / 2)
    assert float(g_a @ J[1] / (g_a.norm() * J[1].norm())) == pytest.approx(0.5, abs=1e-12)


def test_graddrop_keeps_consistent_signs_and_drops_by_purity() -> None:
    J = torch.tensor([[1.0, 3.0, -1.0], [2.0, -1.0, -2.0]], dtype=torch.float64)
    balancer = create("graddrop", seed=0)
    outs = torch.stack([balancer.aggregate(J) for _ in range(4000)])
    torch.testing.assert_close(outs[:, 0], torch.full((4000,), 1.5, dtype=torch.float64))
    torch.testing.assert_close(outs[:, 2], torch.full((4000,), -1.5, dtype=torch.float64))
    # Coordinate 1: P = (1 + 2/4) / 2 = 3/4: keep +3 w.p. 3/4, else -1: mean (3*0.75 - 0.25)/2.
    assert float(outs[:, 1].mean()) == pytest.approx((3 * 0.75 - 1 * 0.25) / 2, abs=0.05)


@pytest.mark.parametrize("name", ["gradvac", "graddrop", "pcgrad", "cagrad"])
def test_random_methods_round_trip_state(name: str) -> None:
    J = jacobian(4, 4, seed=1)
    G = J @ J.T
    ones = torch.ones(4, dtype=torch.float64)

    def run(b):
        return b.aggregate(J) if name == "graddrop" else b.gramian_weights(G, ones)

    a = create(name)
    a.bind([f"t{i}" for i in range(4)])
    run(a)
    b = create(name, **({} if name == "cagrad" else {"seed": 123}))
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        torch.testing.assert_close(run(a), run(b))


def test_mgda_ub_refuses_parameter_level() -> None:
    with pytest.raises(ValueError, match="representation level only"):
        create("mgda_ub").check_level("parameter")


# ---------------------------------------------------------------- torchjd as a reference
needs_torchjd = pytest.mark.skipif(
    importlib.util.find_spec("torchjd") is None, reason="torchjd (test reference) not installed"
)


def torchjd_weighting(name: str):
    from torchjd._linalg._dual_cone import QuadprogProjector
    from torchjd.aggregation import (
        AlignedMTLWeighting,
        DualProjWeighting,
        FairGradWeighting,
        IMTLGWeighting,
        PCGradWeighting,
        UPGradWeighting,
    )

    exact = QuadprogProjector(norm_eps=0.0, reg_eps=1e-10)
    return {
        "upgrad": UPGradWeighting(projector=exact),
        "dualproj": DualProjWeighting(projector=exact),
        "imtl_g": IMTLGWeighting(),
        "aligned_mtl": AlignedMTLWeighting(),
        "fairgrad": FairGradWeighting(alpha=2.0),
        "pcgrad": PCGradWeighting(),
    }[name]


@needs_torchjd
@pytest.mark.parametrize("name", ["upgrad", "dualproj", "imtl_g", "aligned_mtl", "fairgrad"])
@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_torchjd(name: str, seed: int) -> None:
    T = 2 + seed % 5
    # IMTL-G and FairGrad are unique only for full-rank Jacobians.
    J = jacobian(T, T if name in ("fairgrad", "imtl_g") else 1 + seed % T, seed)
    ours = direction(name, J)
    theirs = J.T @ torchjd_weighting(name)(J @ J.T)
    assert float((ours - theirs).norm()) <= 1e-5 * float(J.norm())


@needs_torchjd
def test_pcgrad_agrees_with_torchjd_up_to_mean_convention() -> None:
    J = two([1.0, 0.0], [-1.0, 1.0])  # two tasks: the visiting order does not matter
    theirs = J.T @ torchjd_weighting("pcgrad")(J @ J.T)
    torch.testing.assert_close(direction("pcgrad", J), theirs / 2)


def test_nash_solution_satisfies_bargaining_condition() -> None:
    for seed in range(5):
        J = jacobian(5, 5, seed)
        b = create("nash_mtl")
        b.bind([f"t{i}" for i in range(5)])
        w = b.gramian_weights(J @ J.T, torch.ones(5, dtype=torch.float64))
        assert (w > 0).all()
        torch.testing.assert_close(J @ (J.T @ w), 1 / w, rtol=1e-7, atol=0)
    assert math.isfinite(float(direction("nash_mtl", two([1.0, 0.0], [-1.0, 0.0])).norm()))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("c", [0.4, 1.0, 2.0])
def test_cagrad_solves_the_primal(seed: int, c: float) -> None:
    """The update, times ``1 + c^2``, solves CAGrad's primal ``max_d min_i <g_i, d>`` s.t.
    ``||d - g_0|| <= c ||g_0||``, checked against SLSQP on the primal in ``(d, t)``."""
    from scipy.optimize import minimize

    T = 2 + seed % 6
    J = jacobian(T, 1 + seed % T, seed, P=4)
    d = direction("cagrad", J, c=c) * (1 + c * c)
    g0 = J.mean(0)
    R = c * float(g0.norm())
    Jn, g0n = J.numpy(), g0.numpy()
    reference = minimize(
        lambda z: -z[-1],
        np.concatenate([g0n, [float((J @ g0).min())]]),
        method="SLSQP",
        constraints=[
            {"type": "ineq", "fun": lambda z: Jn @ z[:-1] - z[-1]},
            {"type": "ineq", "fun": lambda z: R * R - ((z[:-1] - g0n) ** 2).sum()},
        ],
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    z = reference.x[:-1]
    assert ((z - g0n) ** 2).sum() <= R * R * (1 + 1e-6)  # SLSQP's point is feasible
    assert float((d - g0).norm()) <= R * (1 + 1e-9) + 1e-12
    assert float((J @ d).min()) >= float((Jn @ z).min()) - 1e-6 * float((J**2).sum())


def test_cagrad_limits() -> None:
    J = jacobian(4, 4, seed=6)
    torch.testing.assert_close(direction("cagrad", J, c=0.0), J.mean(0))
    d = direction("cagrad", J, c=50.0)
    assert (J @ d >= -1e-3 * float((J**2).sum())).all()  # large c: no task conflicts


def test_alpha_fair_solver_converges_on_a_gramian_seen_in_training() -> None:
    """Regression: a benign Gramian from a training run on which the Armijo search once
    stalled below rounding (FairGrad, alpha = 2)."""
    from polytask.balancers.solvers import alpha_fair_weights

    G = torch.tensor([[3.1209e-05, -8.1244e-07], [-8.1244e-07, 8.0788e-05]], dtype=torch.float64)
    for alpha in (0.5, 1.0, 2.0, 5.0):
        w = alpha_fair_weights(G, alpha)
        torch.testing.assert_close(G @ w, w ** (-1 / alpha), rtol=1e-8, atol=0)


def _gradvac_sequential(G, targets, orders, beta, eps=1e-8):
    """GradVac visited pair by pair, as written in the paper (the reference for the
    vectorised implementation)."""
    import math

    import numpy as np

    T = G.shape[0]
    C = np.eye(T)
    norms = np.sqrt(np.clip(np.diag(G), 0, None))
    for i in range(T):
        for j in orders[i]:
            gi = math.sqrt(max(float(C[i] @ G @ C[i]), 0.0))
            if gi <= eps or norms[j] <= eps:
                continue
            phi = min(1.0, max(-1.0, float(C[i] @ G[:, j]) / (gi * norms[j])))
            t = targets[i, j]
            if phi < t:
                root = math.sqrt(max(1 - t**2, eps))
                C[i, j] += gi * (t * math.sqrt(1 - phi**2) - phi * root) / (norms[j] * root)
            targets[i, j] = (1 - beta) * t + beta * phi
    return C.sum(0) / T


def test_gradvac_vectorised_equals_the_pairwise_reference() -> None:
    import numpy as np

    from polytask.balancers.gradvac import GradVac
    from polytask.balancers.pcgrad import visiting_orders

    for T in (3, 9):
        method = GradVac(beta=0.4, seed=2)
        method.bind([f"t{i}" for i in range(T)])
        replay = torch.Generator().manual_seed(2)
        targets = np.zeros((T, T))
        g = torch.Generator().manual_seed(T)
        for _ in range(4):
            J = torch.randn(T, 12, generator=g, dtype=torch.float64)
            G = (J @ J.T).numpy()
            orders = visiting_orders(replay, T).tolist()
            expected = _gradvac_sequential(G, targets, orders, 0.4)
            got = method.gramian_weights(torch.from_numpy(G), torch.ones(T)).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(method.targets.numpy(), targets, rtol=1e-12, atol=1e-14)


def test_with_two_tasks_upgrad_is_pcgrad() -> None:
    """For T = 2 UPGrad's projection of g_1 onto the dual cone {x: g_1.x >= 0, g_2.x >= 0}
    is g_1 - (g_1.g_2 / |g_2|^2) g_2 when g_1.g_2 < 0 (and g_1 otherwise), which is PCGrad's
    projection, so both average the same two vectors: the SNIPS benchmark trains one of them.
    Checked on conflicting, aligned and badly scaled pairs."""
    upgrad, pcgrad = create("upgrad"), create("pcgrad")
    g = torch.Generator().manual_seed(0)
    losses = torch.ones(2, dtype=torch.float64)
    for _ in range(100):
        J = torch.randn(2, 7, generator=g, dtype=torch.float64)
        J = J * 10 ** (4 * torch.rand(2, 1, generator=g, dtype=torch.float64) - 2)
        G = J @ J.T
        torch.testing.assert_close(
            upgrad.gramian_weights(G, losses), pcgrad.gramian_weights(G, losses), rtol=1e-9,
            atol=1e-12 * float(G.abs().max()),
        )  # fmt: skip
