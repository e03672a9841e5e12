"""Primary/auxiliary MTL (reference text 03): closed form, references, roles, applications."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy.optimize import nnls

import polytask
from polytask import Task, TaskSet
from polytask.balancers import create
from polytask.balancers.primary_auxiliary import auxiliary_l2_
from polytask.models import SharedBottom

from .test_gradient_methods import direction, jacobian


def weights_with_roles(J: torch.Tensor, roles: list[str], **options) -> torch.Tensor:
    balancer = create("primary_auxiliary", **options)
    names = [f"t{i}" for i in range(J.shape[0])]
    balancer.bind(names, dict(zip(names, roles, strict=True)))  # type: ignore[arg-type]
    return balancer.gramian_weights(J @ J.T, torch.ones(J.shape[0], dtype=torch.float64))


def test_two_tasks_closed_form() -> None:
    g0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    for g1 in ([-1.0, 1.0], [2.0, 1.0], [-3.0, 0.5]):
        J = torch.stack([g0, torch.tensor(g1, dtype=torch.float64)])
        w = weights_with_roles(J, ["main", "auxiliary"])
        lam = max(0.0, -float(J[0] @ J[1])) / float(J[1] @ J[1])
        torch.testing.assert_close(w, torch.tensor([1.0, lam], dtype=torch.float64))


@pytest.mark.parametrize("seed", range(8))
def test_one_main_many_auxiliaries_matches_nnls(seed: int) -> None:
    T = 2 + seed % 5
    J = jacobian(T, 1 + seed % T, seed)
    w = weights_with_roles(J, ["main"] + ["auxiliary"] * (T - 1))
    assert w[0].item() == pytest.approx(1.0)
    lam, _ = nnls(J[1:].T.numpy(), -J[0].numpy())
    u, u_ref = J.T @ w, J[0] + J[1:].T @ torch.from_numpy(lam)
    assert float(u @ u) <= float(u_ref @ u_ref) + 1e-9 * float((J**2).sum())
    assert (J[1:] @ u >= -1e-9 * float((J**2).sum())).all()  # no auxiliary gets worse


def test_mains_only_is_mgda() -> None:
    J = jacobian(4, 3, seed=4)
    torch.testing.assert_close(
        J.T @ weights_with_roles(J, ["main"] * 4), direction("mgda", J), rtol=1e-7, atol=1e-9
    )


def brute_force(J: torch.Tensor, mains: list[bool]) -> float:
    """Exact optimum by enumerating supports of the KKT system (main weights sum to 1)."""
    G = J @ J.T
    a = torch.tensor(mains, dtype=torch.float64)
    best = float("inf")
    T = len(mains)
    for size in range(1, T + 1):
        for support in itertools.combinations(range(T), size):
            idx = list(support)
            if not any(mains[i] for i in idx):
                continue
            A = torch.zeros(size + 1, size + 1, dtype=torch.float64)
            A[:size, :size] = G[idx][:, idx]
            A[:size, size] = a[idx]
            A[size, :size] = a[idx]
            b = torch.zeros(size + 1, dtype=torch.float64)
            b[size] = 1
            x_s = torch.linalg.lstsq(A, b).solution[:size]
            if (x_s >= -1e-12).all() and abs(float(a[idx] @ x_s) - 1) < 1e-9:
                x = torch.zeros(T, dtype=torch.float64)
                x[idx] = x_s
                best = min(best, float(x @ G @ x))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_mixed_mains_and_auxiliaries_reach_the_optimum(seed: int) -> None:
    J = jacobian(5, 2 + seed % 4, seed)
    roles = ["main", "auxiliary", "main", "auxiliary", "auxiliary"]
    w = weights_with_roles(J, roles)
    mains = torch.tensor([r == "main" for r in roles])
    assert (w >= 0).all() and w[mains].sum().item() == pytest.approx(1.0)
    u = J.T @ w
    assert float(u @ u) <= brute_force(J, mains.tolist()) + 1e-9 * float((J**2).sum())
    assert (J[~mains] @ u >= -1e-9 * float((J**2).sum())).all()


def test_all_auxiliary_is_refused() -> None:
    with pytest.raises(ValueError, match="role='main'"):
        weights_with_roles(jacobian(2, 2, 0), ["auxiliary", "auxiliary"])


@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_roles_flow_from_tasks_and_auxiliary_heads_train(level: str) -> None:
    torch.manual_seed(0)
    model = SharedBottom({"main": 1, "aux": 1}, input_dim=4, trunk_dims=(6,), activation="tanh")
    model = model.double()
    tasks = TaskSet([Task("main", "mse"), Task("aux", "mse", role="auxiliary")])
    x = torch.randn(16, 4, dtype=torch.float64)
    y = {"main": torch.randn(16, dtype=torch.float64), "aux": torch.randn(16, dtype=torch.float64)}
    out = model(x)
    kwargs = (
        {"features": out.features}
        if level == "representation"
        else {"shared_params": model.shared_parameters()}
    )
    result = polytask.backward(tasks.losses(out, y), create("primary_auxiliary"), **kwargs)
    assert result.weights[0].item() == pytest.approx(1.0)
    # The auxiliary head gets its own loss's gradient (weight 1) whatever lambda is.
    aux_head = [p.grad.clone() for p in model.task_parameters("aux")]
    model.zero_grad()
    tasks.losses(model(x), y)["aux"].backward()
    for got, p in zip(aux_head, model.task_parameters("aux"), strict=True):
        want = p.grad * max(1.0, float(result.weights[1]))
        torch.testing.assert_close(got, want)


def test_auxiliary_l2_correction() -> None:
    theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    theta.grad = torch.tensor([-1.0, 0.0])  # -lr g would grow ||theta||: <g, theta> = -1 < 0
    auxiliary_l2_([theta])
    torch.testing.assert_close(theta.grad, torch.tensor([-0.5, 0.5]))  # g + (1/2) theta
    assert float(theta.grad @ theta.detach()) == pytest.approx(0.0)
    theta.grad = torch.tensor([2.0, -1.0])  # <g, theta> = 1 >= 0: unchanged
    auxiliary_l2_([theta])
    torch.testing.assert_close(theta.grad, torch.tensor([2.0, -1.0]))


def test_noisy_labels_with_a_clean_constraint() -> None:
    """Main task: a noisy-label batch; auxiliary: a small clean batch. The shared update must
    never increase the clean loss to first order (reference text 03, 'learning with noise')."""
    torch.manual_seed(1)
    model = SharedBottom({"y": 3}, input_dim=5, trunk_dims=(8,)).double()
    tasks = TaskSet([Task("y", "ce", num_classes=3)])
    x_noisy, x_clean = torch.randn(64, 5).double(), torch.randn(8, 5).double()
    y_clean = (x_clean[:, 0] > 0).long() + (x_clean[:, 1] > 0).long()
    y_noisy = torch.randint(0, 3, (64,))  # pure label noise
    balancer = create("primary_auxiliary")
    params = list(model.parameters())
    for _ in range(5):
        model.zero_grad()
        losses = {
            "noisy": tasks.losses(model(x_noisy), {"y": y_noisy})["y"],
            "clean": tasks.losses(model(x_clean), {"y": y_clean})["y"],
        }
        losses = polytask.TaskLosses(losses, roles={"noisy": "main", "clean": "auxiliary"})
        polytask.backward(losses, balancer, shared_params=params)
        u = torch.cat([p.grad.flatten() for p in params])
        clean = tasks.losses(model(x_clean), {"y": y_clean})["y"]
        g_clean = torch.cat([g.flatten() for g in torch.autograd.grad(clean, params)])
        assert float(u @ g_clean) >= -1e-10 * float(u.norm() * g_clean.norm())
        with torch.no_grad():
            for p in params:
                p -= 0.1 * p.grad
