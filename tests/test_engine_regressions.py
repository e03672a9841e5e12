"""Regression tests for the engine and balancer defects of issue 14, one block per defect.

Each test was written before its fix and failed on the code it fixes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import polytask
from polytask import Task, TaskSet
from polytask.balancers import create
from polytask.data import TensorTaskDataset
from polytask.training import Trainer, TrainerConfig

from .conftest import regression_problem


def scalar_losses(J: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Losses ``L_t = <J_t, f>`` of one feature vector ``f`` (a leaf): the feature
    Jacobian is exactly ``J``."""
    f = torch.ones(J.shape[1], dtype=J.dtype, requires_grad=True)
    return {f"t{i}": (row * f).sum() for i, row in enumerate(J)}, f


def engine_direction(name: str, J: torch.Tensor, **options) -> torch.Tensor:
    losses, f = scalar_losses(J)
    polytask.backward(losses, create(name, **options), features=f)
    assert f.grad is not None
    return f.grad


# ---------------------------------------------------------------- 1. absent tasks
def _absent_batch(T: int = 3) -> tuple:
    model, tasks, x, y = regression_problem(T=T, batch=16)
    y = dict(y)
    y["t2"] = torch.full_like(y["t2"], float("nan"))  # no label for t2 in this batch
    return model, tasks, x, y


@pytest.mark.parametrize("name", ["mgda", "famo", "upgrad", "nash_mtl", "cagrad", "imtl_g"])
@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_absent_task_does_not_stop_training(name: str, level: str) -> None:
    model, tasks, x, y = _absent_batch()
    out = model(x)
    losses = tasks.losses(out, y)
    assert losses.present == [True, True, False]
    kwargs = (
        {"features": out.features}
        if level == "representation"
        else {"shared_params": model.shared_parameters()}
    )
    result = polytask.backward(losses, create(name), **kwargs)
    assert result.weights is not None
    assert float(result.weights[2]) == 0.0
    shared = torch.cat([p.grad.flatten() for p in model.shared_parameters()])
    assert float(shared.norm()) > 1e-6, "the step changed nothing"


def test_absent_task_weights_decided_among_present_tasks() -> None:
    model, tasks, x, y = _absent_batch()
    out = model(x)
    result = polytask.backward(tasks.losses(out, y), create("mgda"), features=out.features)
    # The same batch with the absent task left out of the task set.
    model2, *_ = regression_problem(T=3, batch=16)
    out2 = model2(x)
    present = TaskSet([tasks.task("t0"), tasks.task("t1")])
    sub = {k: out2.predictions[k] for k in ("t0", "t1")}
    losses2 = present.losses(sub, {k: y[k] for k in ("t0", "t1")})
    branches = {k: out2.features[k] for k in ("t0", "t1")}
    reference = polytask.backward(losses2, create("mgda"), features=branches)
    torch.testing.assert_close(result.weights[:2], reference.weights)
    for a, b in zip(model.shared_parameters(), model2.shared_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_absent_task_state_untouched_famo() -> None:
    model, tasks, x, y = regression_problem(T=3, batch=16)
    famo = create("famo")
    for _ in range(3):
        out = model(x)
        polytask.backward(tasks.losses(out, y), famo)
    before = {k: v.clone() for k, v in famo.get_extra_state().items() if torch.is_tensor(v)}
    y = dict(y)
    y["t2"] = torch.full_like(y["t2"], float("nan"))
    out = model(x)
    polytask.backward(tasks.losses(out, y), famo)
    after = famo.get_extra_state()
    torch.testing.assert_close(after["logits"][2], before["logits"][2])
    torch.testing.assert_close(after["previous"][2], before["previous"][2])


def test_no_task_present_leaves_gradients_alone() -> None:
    model, tasks, x, y = regression_problem(T=2, batch=8)
    y = {k: torch.full_like(v, float("nan")) for k, v in y.items()}
    out = model(x)
    result = polytask.backward(tasks.losses(out, y), create("mgda"), features=out.features)
    assert result.skipped
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- 2. heads under huge weights
@pytest.mark.parametrize("name", ["cagrad", "nash_mtl", "mgda", "pcgrad", "imtl_g"])
def test_head_update_on_the_scale_of_its_own_gradient(name: str) -> None:
    model, tasks, x, y = regression_problem(T=3, batch=16)
    last = model.towers["t0"][-1]
    torch.nn.init.zeros_(last.weight)  # task t0's shared gradient is exactly zero
    out = model(x)
    losses = tasks.losses(out, y)
    own = {
        n: torch.autograd.grad(losses[n], list(model.towers[n].parameters()), retain_graph=True)
        for n in tasks.names
    }
    polytask.backward(losses, create(name), features=out.features)
    for n in tasks.names:
        for p, g in zip(model.towers[n].parameters(), own[n], strict=True):
            torch.testing.assert_close(p.grad, g / 3)


# ---------------------------------------------------------------- 3. cross-head losses
@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_cross_head_loss_gets_the_exact_gramian(level: str) -> None:
    torch.manual_seed(0)
    model = polytask.models.create(
        "shared_bottom", heads={"ctr": 1, "ctcvr": 1}, input_dim=5, trunk_dims=(8,)
    ).double()
    x = torch.randn(32, 5, dtype=torch.float64)
    y_ctr = torch.randint(0, 2, (32,)).double()
    y_ctcvr = y_ctr * torch.randint(0, 2, (32,)).double()

    def losses_and_kwargs():
        out = model(x)
        p_ctr = torch.sigmoid(out.predictions["ctr"].squeeze(-1))
        p_cvr = torch.sigmoid(out.predictions["ctcvr"].squeeze(-1))
        losses = {
            "ctr": F.binary_cross_entropy(p_ctr, y_ctr),
            "ctcvr": F.binary_cross_entropy(p_ctr * p_cvr, y_ctcvr),  # reads the ctr head
        }
        if level == "representation":
            return losses, {"features": out.features}
        return losses, {"features": out.features, "shared_params": model.shared_parameters()}

    results = {}
    for method in ("auto", "loop"):
        model.zero_grad()
        losses, kwargs = losses_and_kwargs()
        results[method] = polytask.backward(losses, create("mgda"), method=method, **kwargs)
    torch.testing.assert_close(results["auto"].gramian, results["loop"].gramian)
    torch.testing.assert_close(results["auto"].weights, results["loop"].weights)


# ---------------------------------------------------------------- 4. float32 problems
def test_mgda_float32_case_from_the_issue() -> None:
    J = torch.tensor([[0.1], [0.3], [-0.5]])
    d = engine_direction("mgda", J)
    assert torch.isfinite(d).all()


def test_mgda_float32_random_small_problems() -> None:
    g = torch.Generator().manual_seed(0)
    mgda = create("mgda")
    for _ in range(300):
        J = torch.randn(3, 1, generator=g)
        w = mgda.gramian_weights(J @ J.T, torch.ones(3))
        assert torch.isfinite(w).all()
    for T in (3, 4, 8):
        for _ in range(20):
            base = torch.randn(1, 6, generator=g)
            J = base + 1e-4 * torch.randn(T, 6, generator=g)  # near-duplicate tasks
            w = mgda.gramian_weights(J @ J.T, torch.ones(T))
            assert torch.isfinite(w).all()


def test_nash_mtl_float32_opposed_pairs() -> None:
    d = engine_direction("nash_mtl", torch.tensor([[0.3], [-0.5]]))
    assert torch.isfinite(d).all()
    g = torch.Generator().manual_seed(1)
    nash = create("nash_mtl")
    for _ in range(100):
        a = torch.randn(1, 3, generator=g)
        J = torch.cat([a, -torch.rand(1, generator=g) * 3 * a])
        assert torch.isfinite(nash.gramian_weights(J @ J.T, torch.ones(2))).all()


# ---------------------------------------------------------------- 5. CAGrad
def test_cagrad_large_c_never_conflicts() -> None:
    J = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    for c in (1.0, 2.0, 5.0):
        d = engine_direction("cagrad", J, c=c)
        assert (J @ d >= -1e-9 * float((J**2).sum())).all(), (c, J @ d)
    J2 = torch.tensor([[2.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    d = engine_direction("cagrad", J2, c=1.0)
    assert (J2 @ d >= -1e-9 * float((J2**2).sum())).all(), J2 @ d


def test_cagrad_invariant_to_task_order_when_degenerate() -> None:
    J = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    perm = torch.tensor([1, 0, 2])
    torch.testing.assert_close(
        engine_direction("cagrad", J[perm], c=0.5), engine_direction("cagrad", J, c=0.5)
    )


def test_cagrad_c2_float32_solves() -> None:
    g = torch.Generator().manual_seed(3)
    cagrad = create("cagrad", c=2.0)
    for _ in range(50):
        J = torch.randn(4, 3, generator=g)
        w = cagrad.gramian_weights(J @ J.T, torch.ones(4))
        assert torch.isfinite(w).all()


# ---------------------------------------------------------------- 6. UPGrad zero rows
def test_upgrad_zero_rows_without_conflict_is_the_mean() -> None:
    J = torch.tensor([[1.0], [1.0], [2.0], [0.0], [0.0], [2.0]], dtype=torch.float64)
    d = engine_direction("upgrad", J)
    torch.testing.assert_close(d, torch.tensor([1.0], dtype=torch.float64))


# ---------------------------------------------------------------- 7. IMTL-G parallel rows
def test_imtl_g_parallel_gradients_order_invariant() -> None:
    J = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    torch.testing.assert_close(engine_direction("imtl_g", J), engine_direction("imtl_g", J.flip(0)))


# ---------------------------------------------------------------- 8. evaluation losses
def test_evaluation_loss_weighs_labelled_rows() -> None:
    torch.manual_seed(0)
    N = 64
    x = torch.randn(N, 4)
    a = torch.randn(N)
    b = torch.randn(N) * 5
    b[:48] = float("nan")  # task b labelled only in the last 16 rows (one clump)
    data = TensorTaskDataset(x, {"a": a, "b": b})
    tasks = TaskSet([Task("a", "mse"), Task("b", "mse")])
    model = polytask.models.create("shared_bottom", heads={"a": 1, "b": 1}, input_dim=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    trainer = Trainer(
        model,
        tasks,
        create("equal"),
        optimizer,
        config=TrainerConfig(epochs=1, eval_batch_size=16, progress=False),
    )
    result = trainer.evaluate(data)
    with torch.no_grad():
        pred = model(x).predictions
    expected_b = float((pred["b"].squeeze(-1)[48:] - b[48:]).square().mean())
    expected_a = float((pred["a"].squeeze(-1) - a).square().mean())
    assert result["loss"]["b"] == pytest.approx(expected_b, rel=1e-5)
    assert result["loss"]["a"] == pytest.approx(expected_a, rel=1e-5)
