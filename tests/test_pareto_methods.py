"""Pareto-directed methods: PE-LTR (floors), Pareto MTL (sub-regions), EPO (preference ray)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.optimize import minimize

import polytask
from polytask.balancers import create

from .test_gradient_methods import direction, jacobian


def test_pe_ltr_without_floors_is_mgda() -> None:
    J = jacobian(4, 3, seed=2)
    torch.testing.assert_close(direction("pe_ltr", J), direction("mgda", J), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_pe_ltr_respects_floors_and_is_optimal(seed: int) -> None:
    J = jacobian(4, 2 + seed % 3, seed)
    floors = [0.1, 0.3, 0.0, 0.2]
    balancer = create("pe_ltr", lower_bounds=floors)
    balancer.bind(["a", "b", "c", "d"])
    w = balancer.gramian_weights(J @ J.T, torch.ones(4, dtype=torch.float64))
    assert w.sum().item() == pytest.approx(1.0)
    assert (w >= torch.tensor(floors, dtype=torch.float64) - 1e-12).all()
    G = (J @ J.T).numpy()
    reference = minimize(
        lambda v: float(v @ G @ v),
        [0.25] * 4,
        method="SLSQP",
        bounds=[(f, 1) for f in floors],
        constraints={"type": "eq", "fun": lambda v: v.sum() - 1},
        options={"ftol": 1e-15, "maxiter": 500},
    )
    assert float(w @ (J @ J.T) @ w) <= reference.fun + 1e-8 * float(G.trace())


def test_pe_ltr_floor_validation() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        create("pe_ltr", lower_bounds=[0.7, 0.6])
    with pytest.raises(KeyError, match="Did you mean 'a'"):
        create("pe_ltr", lower_bounds={"aa": 0.1}).bind(["a", "b"])


def toy_run(balancer, steps: int = 400, lr: float = 0.05) -> torch.Tensor:
    """Two convex objectives with a segment of Pareto optima: L1 = |x - a|^2, L2 = |x - b|^2."""
    x = torch.nn.Parameter(torch.tensor([0.3, -1.5], dtype=torch.float64))
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for _ in range(steps):
        x.grad = None
        losses = {"l1": ((x - a) ** 2).sum() + 0.1, "l2": ((x - b) ** 2).sum() + 0.1}
        polytask.backward(losses, balancer, shared_params=[x])
        with torch.no_grad():
            x -= lr * x.grad
    with torch.no_grad():
        return torch.stack([((x - a) ** 2).sum() + 0.1, ((x - b) ** 2).sum() + 0.1])


def test_pareto_mtl_traces_the_front_by_preference() -> None:
    angles = []
    for index in range(5):
        final = toy_run(create("pareto_mtl", index=index, init_steps=100))
        angles.append(math.atan2(float(final[1]), float(final[0])))
    # Preference k points at angle k * pi / 8: the solutions are ordered the same way.
    assert all(a < b for a, b in itertools.pairwise(angles))
    assert angles[0] < math.pi / 4 < angles[-1]


def test_pareto_mtl_needs_preferences_beyond_two_tasks() -> None:
    with pytest.raises(ValueError, match="preferences"):
        create("pareto_mtl").bind(["a", "b", "c"])


@pytest.mark.parametrize("preference", [[1.0, 1.0], [1.0, 3.0], [2.0, 1.0]])
def test_epo_reaches_the_preference_ray(preference: list[float]) -> None:
    balancer = create("epo", preference=preference)
    final = toy_run(balancer, steps=600)
    weighted = torch.tensor(preference, dtype=torch.float64) * final
    assert float(weighted[0] / weighted[1]) == pytest.approx(1.0, abs=0.02)
    # ... and the point is Pareto optimal: on the segment between a and b, L1 + L2 minimal
    # along the ray means x on the segment: sqrt(L1 - .1) + sqrt(L2 - .1) = sqrt(2).
    assert math.sqrt(final[0] - 0.1) + math.sqrt(final[1] - 0.1) == pytest.approx(
        math.sqrt(2), abs=0.02
    )


def test_epo_weights_on_the_simplex() -> None:
    J = jacobian(3, 3, seed=4)
    balancer = create("epo")
    balancer.bind(["a", "b", "c"])
    w = balancer.gramian_weights(J @ J.T, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert w.sum().item() == pytest.approx(1.0) and (w >= -1e-12).all()
    assert balancer.last_mode == "balance"


@pytest.mark.parametrize("scale", [0.0, 1e-10, 1.0, 1e15])
def test_pareto_mtl_finite_on_degenerate_gramians(scale: float) -> None:
    for J in (jacobian(2, 1, seed=1), torch.tensor([[1.0, 2.0], [-1.0, -2.0]]).double()):
        for losses in ([1.0, 1.0], [3.0, 0.1]):
            balancer = create("pareto_mtl", index=1)
            balancer.bind(["a", "b"])
            w = balancer.gramian_weights((J * scale) @ (J * scale).T, torch.tensor(losses).double())
            assert torch.isfinite(w).all()
