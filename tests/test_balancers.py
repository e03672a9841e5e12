"""Balancers: closed forms, brute-force references and stated properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import polytask
from polytask.balancers import MGDA, FixedWeights, PCGrad
from polytask.balancers.pcgrad import projection_coefficients
from polytask.balancers.solvers import min_norm_simplex


def brute_force_min_norm(G: torch.Tensor) -> float:
    """Exact min of w^T G w on the simplex: enumerate supports, solve each KKT system."""
    T = G.shape[0]
    best = float("inf")
    for size in range(1, T + 1):
        for support in itertools.combinations(range(T), size):
            idx = list(support)
            A = torch.zeros(size + 1, size + 1, dtype=torch.float64)
            A[:size, :size] = G[idx][:, idx]
            A[:size, size] = 1
            A[size, :size] = 1
            b = torch.zeros(size + 1, dtype=torch.float64)
            b[size] = 1
            w_s = torch.linalg.lstsq(A, b).solution[:size]
            if (w_s >= -1e-12).all() and abs(float(w_s.sum()) - 1) < 1e-9:
                w = torch.zeros(T, dtype=torch.float64)
                w[idx] = w_s
                best = min(best, float(w @ G @ w))
    return best


def random_jacobian(T: int, P: int, rank: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, rank, generator=g, dtype=torch.float64) @ torch.randn(
        rank, P, generator=g, dtype=torch.float64
    )


@pytest.mark.parametrize("T", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(6))
def test_mgda_reaches_the_min_norm_point(T: int, seed: int) -> None:
    rank = max(1, (seed % T) + 1)
    J = random_jacobian(T, 7, rank, seed)
    G = J @ J.T
    w = MGDA().gramian_weights(G, torch.ones(T, dtype=torch.float64))
    assert (w >= 0).all() and torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    value = float(w @ G @ w)
    optimum = brute_force_min_norm(G)
    assert value <= optimum + 1e-6 * max(1.0, optimum)
    # Never conflicts: <d, g_t> >= ||d||^2 - tol for every task.
    d = J.T @ w
    assert (J @ d >= float(d @ d) - 1e-5 * float(G.diagonal().max())).all()


def test_mgda_two_task_closed_form() -> None:
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([0.0, 2.0], dtype=torch.float64)
    G = torch.stack([g1, g2]) @ torch.stack([g1, g2]).T
    # min ||a g1 + (1-a) g2||^2 = a^2 + 4 (1-a)^2 -> a = 4/5.
    w = MGDA().gramian_weights(G, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(w, torch.tensor([0.8, 0.2], dtype=torch.float64))


def test_mgda_l2_normalisation_undoes_itself() -> None:
    J = torch.tensor([[10.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    w = MGDA(normalization="l2").gramian_weights(J @ J.T, torch.ones(2, dtype=torch.float64))
    # On unit gradients the min-norm point is (1/2, 1/2); raw weights are 1/2 / ||g_t||.
    torch.testing.assert_close(w, torch.tensor([0.05, 0.5], dtype=torch.float64))


def test_pcgrad_hand_computed_two_tasks() -> None:
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    J = torch.stack([g1, g2])
    w = PCGrad().gramian_weights(J @ J.T, torch.ones(2, dtype=torch.float64))
    # g1' = g1 - (-1/2) g2 = (0.5, 0.5); g2' = g2 - (-1/1) g1 = (0, 1); mean = (0.25, 0.75).
    torch.testing.assert_close(J.T @ w, torch.tensor([0.25, 0.75], dtype=torch.float64))


def test_pcgrad_without_conflict_is_the_mean() -> None:
    J = torch.tensor([[1.0, 0.2], [0.3, 1.0], [0.5, 0.5]], dtype=torch.float64)
    w = PCGrad().gramian_weights(J @ J.T, torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(w, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_pcgrad_three_tasks_matches_sequential_definition() -> None:
    """Vectorised PCGrad equals the paper's per-task loop with the same visiting orders."""
    J = random_jacobian(4, 6, 4, seed=11)
    balancer = PCGrad(seed=3)
    orders = PCGrad(seed=3).orders(4)
    w = balancer.gramian_weights(J @ J.T, torch.ones(4, dtype=torch.float64))
    projected = []
    for i in range(4):
        g = J[i].clone()
        for j in orders[i].tolist():
            dot = g @ J[j]
            if dot < 0:
                g = g - dot / (J[j] @ J[j]) * J[j]
        projected.append(g)
    torch.testing.assert_close(J.T @ w, torch.stack(projected).mean(0), rtol=1e-10, atol=1e-12)


def test_pcgrad_loop_is_the_same_in_torch_and_numpy() -> None:
    """The torch form (GPU Gramians) and the NumPy form (CPU) of the projection loop agree,
    on a Gramian with conflicts (some projections happen, some do not)."""
    J = random_jacobian(7, 9, 7, seed=5)
    G = J @ J.T
    assert (G < 0).any() and (G > 0).sum() > 7
    order = PCGrad(seed=4).orders(7)
    from_numpy = projection_coefficients(G.numpy(), order.numpy(), np)
    from_torch = projection_coefficients(G, order, torch)
    assert not np.allclose(from_numpy, np.eye(7))
    torch.testing.assert_close(torch.from_numpy(from_numpy), from_torch, rtol=1e-12, atol=1e-12)


def test_pcgrad_state_dict_continues_identically() -> None:
    J = random_jacobian(5, 6, 5, seed=2)
    G = J @ J.T
    ones = torch.ones(5, dtype=torch.float64)
    a = PCGrad(seed=1)
    a.bind([f"t{i}" for i in range(5)])
    a.gramian_weights(G, ones)
    state = a.state_dict()
    b = PCGrad(seed=99)
    b.load_state_dict(state)
    assert b.task_names == a.task_names
    for _ in range(3):
        torch.testing.assert_close(a.gramian_weights(G, ones), b.gramian_weights(G, ones))


@pytest.mark.parametrize("name", ["mgda", "pcgrad"])
@pytest.mark.parametrize("scale", [0.0, 1e-10, 1e-3, 1.0, 1e6, 1e15])
def test_gramian_methods_finite_on_degenerate_gramians(name: str, scale: float) -> None:
    balancer = polytask.balancers.create(name)
    ones = torch.ones(4, dtype=torch.float64)
    for rank in (1, 2, 4):
        J = random_jacobian(4, 5, rank, seed=rank) * scale
        w = balancer.gramian_weights(J @ J.T, ones)
        assert torch.isfinite(w).all(), (name, scale, rank, w)


def test_mgda_is_invariant_to_task_order() -> None:
    J = random_jacobian(4, 6, 3, seed=8)
    perm = torch.tensor([2, 0, 3, 1])
    mgda = MGDA()
    ones = torch.ones(4, dtype=torch.float64)
    d = J.T @ mgda.gramian_weights(J @ J.T, ones)
    d_perm = J[perm].T @ mgda.gramian_weights(J[perm] @ J[perm].T, ones)
    torch.testing.assert_close(d, d_perm, rtol=1e-5, atol=1e-7)


def test_min_norm_simplex_single_task() -> None:
    assert min_norm_simplex(torch.tensor([[4.0]])).tolist() == [1.0]


def test_fixed_weights_by_name_and_prior() -> None:
    losses = torch.tensor([1.0, 2.0, 3.0])
    fixed = FixedWeights({"b": 2.0})
    fixed.bind(["a", "b", "c"])
    assert fixed.loss_weights(losses).tolist() == [0.0, 2.0, 0.0]
    prior = FixedWeights()
    prior.bind(["a", "b"], prior_weights={"a": 1.0, "b": 0.5})
    assert prior.loss_weights(losses[:2]).tolist() == [1.0, 0.5]
    with pytest.raises(KeyError, match="Did you mean 'b'"):
        FixedWeights({"bb": 1.0}).bind(["a", "b"])
    with pytest.raises(ValueError, match=">= 0"):
        FixedWeights([1.0, -1.0])


def test_equal_weighting_is_a_mean() -> None:
    eq = polytask.balancers.create("equal")
    losses = torch.tensor([1.0, 2.0, 6.0])
    assert eq.objective(losses, eq.loss_weights(losses)).item() == pytest.approx(3.0)


def test_registry_suggests_close_names() -> None:
    with pytest.raises(KeyError, match="Did you mean 'pcgrad'"):
        polytask.balancers.create("pcgard")
    with pytest.raises(TypeError, match="normalization"):
        polytask.balancers.create("mgda", normalisation="l2")
    assert {"equal", "fixed", "mgda", "pcgrad"} <= set(polytask.balancers.available())
    rows = {r["name"]: r for r in polytask.balancers.describe()}
    assert rows["mgda"]["needs"] == "gramian" and rows["equal"]["needs"] == "losses"


def test_level_refusal_is_explicit() -> None:
    class RepresentationOnly(MGDA):
        levels = ("representation",)

    with pytest.raises(ValueError, match="representation level only"):
        RepresentationOnly().check_level("parameter")
