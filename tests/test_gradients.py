"""The gradient engine against independent per-task references, at both levels."""

from __future__ import annotations

import pytest
import torch

import polytask
from polytask.balancers import JacobianAggregation
from polytask.gradients import feature_jacobian, gramian, parameter_jacobian

from .conftest import level_kwargs, regression_problem


def reference_parameter_jacobian(model, tasks, x, y) -> torch.Tensor:
    """Rows: each task's gradient w.r.t. the shared parameters from its own forward pass."""
    rows = []
    for task in tasks.names:
        model.zero_grad()
        out = model(x)
        loss = tasks.losses(out, y)[task]
        loss.backward()
        rows.append(torch.cat([p.grad.flatten() for p in model.shared_parameters()]))
    model.zero_grad()
    return torch.stack(rows)


def reference_feature_jacobian(model, tasks, x, y) -> torch.Tensor:
    """Rows: each task's gradient w.r.t. the trunk output, from a fresh forward per task."""
    rows = []
    for task in tasks.names:
        z = model.trunk(x).detach().requires_grad_()
        pred = model.towers[task](z)
        loss = ((pred.squeeze(-1) - y[task]) ** 2).mean()
        (g,) = torch.autograd.grad(loss, z)
        rows.append(g.flatten())
    return torch.stack(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["loop", "vmap", "auto"])
def test_parameter_gramian_matches_reference(seed: int, method: str) -> None:
    model, tasks, x, y = regression_problem(T=4, seed=seed)
    J = reference_parameter_jacobian(model, tasks, x, y)
    out = model(x)
    losses = tasks.losses(out, y)
    params = list(model.shared_parameters())
    # Through the losses, and through the features (chain rule via the trunk's VJP).
    for features in (None, out.features):
        blocks = parameter_jacobian(losses.values_list(), losses.names, params, features, method)
        torch.testing.assert_close(gramian(blocks), J @ J.T, rtol=1e-10, atol=1e-12)
        flat = torch.cat([b.flatten(1) for b in blocks], dim=1)
        torch.testing.assert_close(flat, J, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["loop", "vmap", "auto"])
def test_representation_gramian_matches_reference(method: str) -> None:
    model, tasks, x, y = regression_problem(T=3, seed=3)
    J = reference_feature_jacobian(model, tasks, x, y)
    out = model(x)
    losses = tasks.losses(out, y)
    # Per-task branches (one backward) and the single shared tensor (generic path).
    for features in (out.features, out.shared_features()):
        rows = feature_jacobian(losses.values_list(), losses.names, features, method)
        torch.testing.assert_close(rows.flatten(1), J, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gramian([rows]), J @ J.T, rtol=1e-10, atol=1e-12)


def _grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def _mean_loss_grads(model, tasks, x, y) -> list[torch.Tensor]:
    """Gradients of the mean task loss, by a plain backward (then zeroed again)."""
    tasks.losses(model(x), y).stack().mean().backward()
    grads = _grads(model)
    model.zero_grad()
    return grads


@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_equal_weighting_backward_equals_mean_backward(level: str) -> None:
    model, tasks, x, y = regression_problem(T=3)
    expected = _mean_loss_grads(model, tasks, x, y)
    out = model(x)
    kwargs = level_kwargs(level, model, out)
    result = polytask.backward(tasks.losses(out, y), polytask.balancers.create("equal"), **kwargs)
    for got, want in zip(_grads(model), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(result.weights, torch.full((3,), 1 / 3, dtype=torch.float64))


def _expected_grads(model, tasks, x, y, weights, shared) -> list[torch.Tensor | None]:
    """The engine's rule, by two plain backward passes: the shared parameters get
    grad(sum_t w_t L_t), every other parameter grad((1/T) sum_t L_t) (heads on the mean)."""
    shared_ids = {id(p) for p in shared}
    model.zero_grad()
    (weights * tasks.losses(model(x), y).stack()).sum().backward()
    weighted = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    tasks.losses(model(x), y).stack().mean().backward()
    mean = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return [
        w if id(p) in shared_ids else m
        for p, w, m in zip(model.parameters(), weighted, mean, strict=True)
    ]


@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_gramian_method_gives_gradient_of_weighted_sum(level: str) -> None:
    """A Gramian method's update is exactly grad(sum_t w_t L_t) for the shared part, and the
    mean loss's gradient for the heads."""
    model, tasks, x, y = regression_problem(T=3, seed=5)
    out = model(x)
    kwargs = level_kwargs(level, model, out)
    result = polytask.backward(tasks.losses(out, y), polytask.balancers.create("mgda"), **kwargs)
    got = _grads(model)
    expected = _expected_grads(model, tasks, x, y, result.weights, model.shared_parameters())
    for g, want in zip(got, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-14)
    J = reference_parameter_jacobian(model, tasks, x, y)
    if level == "parameter":
        torch.testing.assert_close(result.gramian, J @ J.T, rtol=1e-10, atol=1e-12)


class RowMean(JacobianAggregation):
    """Test aggregation: the mean of the Jacobian's rows (equals equal weighting)."""

    def aggregate(self, jacobian: torch.Tensor) -> torch.Tensor:
        return jacobian.mean(dim=0)


class Scaled(JacobianAggregation):
    """Test aggregation: 3x the first row only (so the shared grad differs from the mean)."""

    def aggregate(self, jacobian: torch.Tensor) -> torch.Tensor:
        return 3 * jacobian[0]


@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_jacobian_aggregation_writes_direction(level: str) -> None:
    model, tasks, x, y = regression_problem(T=3, seed=7)
    expected = _mean_loss_grads(model, tasks, x, y)
    out = model(x)
    kwargs = level_kwargs(level, model, out)
    polytask.backward(tasks.losses(out, y), RowMean(), **kwargs)
    for got, want in zip(_grads(model), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    # A direction that is not the mean: shared grads are 3 g_0, heads keep the mean gradient.
    head_expected = {id(p): g for p, g in zip(model.parameters(), expected, strict=True)}
    J = reference_parameter_jacobian(model, tasks, x, y)
    out = model(x)
    polytask.backward(tasks.losses(out, y), Scaled(), shared_params=model.shared_parameters())
    shared = torch.cat([p.grad.flatten() for p in model.shared_parameters()])
    torch.testing.assert_close(shared, 3 * J[0], rtol=1e-10, atol=1e-12)
    for task in tasks.names:
        for p in model.task_parameters(task):
            torch.testing.assert_close(p.grad, head_expected[id(p)], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("level", ["representation", "parameter", "parameter-branches"])
@pytest.mark.parametrize("preset", ["none", "some heads"])
def test_backward_accumulates_like_tensor_backward(level: str, preset: str) -> None:
    """A second call adds to ``.grad``: whether no head had a gradient before (the heads'
    gradients are then weighted in place in ``.grad``) or only some had (they are added)."""
    model, tasks, x, y = regression_problem(T=3)
    balancer = polytask.balancers.create("upgrad")

    def step() -> None:
        out = model(x)
        if level == "parameter-branches":
            kwargs = {"features": out.features, "shared_params": model.shared_parameters()}
        else:
            kwargs = level_kwargs(level, model, out)
        polytask.backward(tasks.losses(out, y), balancer, **kwargs)

    step()
    once = _grads(model)
    model.zero_grad(set_to_none=True)
    if preset == "some heads":
        head = next(iter(model.task_parameters(tasks.names[1])))
        head.grad = torch.full_like(head, 0.5)
    step()
    step()
    for p, first in zip(model.parameters(), once, strict=True):
        assert p.grad is not None
        preset_value = 0.5 if preset == "some heads" and p is head else 0.0
        torch.testing.assert_close(p.grad, 2 * first + preset_value)


def test_gradient_method_without_level_names_both_options() -> None:
    model, tasks, x, y = regression_problem(T=2)
    out = model(x)
    with pytest.raises(ValueError, match=r"features=.*shared_params="):
        polytask.backward(tasks.losses(out, y), polytask.balancers.create("mgda"))


def test_features_must_cover_the_tasks() -> None:
    model, tasks, x, y = regression_problem(T=2)
    out = model(x)
    bad = {"t0": out.features["t0"], "t9": out.features["t1"]}
    with pytest.raises(KeyError, match="t9"):
        polytask.backward(tasks.losses(out, y), polytask.balancers.create("mgda"), features=bad)
    unrelated = {"t0": out.features["t0"], "t1": torch.randn(16, 5, requires_grad=True)}
    with pytest.raises(ValueError, match="branches of one shared tensor"):
        polytask.backward(
            tasks.losses(out, y), polytask.balancers.create("mgda"), features=unrelated
        )


def test_shared_param_outside_features_is_refused() -> None:
    model, tasks, x, y = regression_problem(T=2)
    out = model(x)
    head_param = next(model.task_parameters("t0"))
    with pytest.raises(ValueError, match="uses a shared parameter directly"):
        polytask.backward(
            tasks.losses(out, y),
            polytask.balancers.create("mgda"),
            features=out.features,
            shared_params=[*model.shared_parameters(), head_param],
        )


def test_balancer_refuses_other_tasks() -> None:
    model, tasks, x, y = regression_problem(T=2)
    balancer = polytask.balancers.create("equal")
    polytask.backward(tasks.losses(model(x), y), balancer)
    with pytest.raises(ValueError, match="bound to tasks"):
        polytask.backward({"other": model(x).predictions["t0"].sum()}, balancer)


def test_loss_without_grad_is_refused() -> None:
    with pytest.raises(ValueError, match="does not require grad"):
        polytask.backward([torch.tensor(1.0)], polytask.balancers.create("equal"))


class CountingWeighting(polytask.balancers.LossWeighting):
    """Test weighting that counts its calls (a stateful method must update once per step)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def loss_weights(self, losses: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.tensor([2.0, 0.0, 1.0], dtype=losses.dtype)


def test_loss_weighting_is_consulted_once_per_step() -> None:
    model, tasks, x, y = regression_problem(T=3)
    balancer = CountingWeighting()
    out = model(x)
    result = polytask.backward(tasks.losses(out, y), balancer)
    assert balancer.calls == 1
    got = _grads(model)
    model.zero_grad()
    out = model(x)
    losses = tasks.losses(out, y).stack()
    (2 * losses[0] + losses[2]).backward()
    for g, want in zip(got, _grads(model), strict=True):
        torch.testing.assert_close(g, want)
    assert result.weights.tolist() == [2.0, 0.0, 1.0]


class TiedHeads(polytask.models.MultiTaskModel):
    """Test model: head 'b' reuses head 'a''s layer, and task 'c' also reads the raw features."""

    def __init__(self) -> None:
        super().__init__()
        self.task_names = ("a", "b", "c")
        self.trunk = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh()).double()
        self.head_a = torch.nn.Linear(5, 1).double()
        self.head_c = torch.nn.Linear(5, 1).double()

    def forward(self, x):
        z = self.trunk(x)
        branches = polytask.branch(z, self.task_names)
        predictions = {
            "a": self.head_a(branches["a"]),
            "b": self.head_a(branches["b"]) * 2,  # tied with head a
            "c": self.head_c(branches["c"]) + z.sum(1, keepdim=True),  # reads z directly
        }
        return polytask.TaskOutputs(predictions, branches)


def _check_weighted_sum(model, tasks, x, y, shared, **kwargs) -> None:
    """backward's update equals grad(sum_t w_t L_t) for the parameters ``shared`` and the
    mean loss's gradient for the others (fresh forward)."""
    model.zero_grad()
    out = model(x)
    chosen = {k: (v(out) if callable(v) else v) for k, v in kwargs.items()}
    result = polytask.backward(tasks.losses(out, y), polytask.balancers.create("mgda"), **chosen)
    got = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    expected = _expected_grads(model, tasks, x, y, result.weights, shared)
    for g, want in zip(got, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=1e-10, atol=1e-12)
    model.zero_grad()


def test_fast_paths_detect_tied_heads_and_direct_feature_use() -> None:
    torch.manual_seed(0)
    model = TiedHeads()
    tasks = polytask.TaskSet([polytask.Task(n, "mse") for n in model.task_names])
    x = torch.randn(9, 6, dtype=torch.float64)
    y = {n: torch.randn(9, dtype=torch.float64) for n in model.task_names}
    trunk = list(model.trunk.parameters())
    _check_weighted_sum(model, tasks, x, y, trunk, features=lambda out: out.features)
    _check_weighted_sum(model, tasks, x, y, trunk, shared_params=trunk)


def test_parameter_level_with_part_of_the_trunk() -> None:
    """Only the last trunk layer is 'shared' (GradNorm-style): it gets grad(sum_t w_t L_t),
    the rest of the trunk is trained like the heads, on the mean loss."""
    model, tasks, x, y = regression_problem(T=3, seed=9)
    last = list(model.trunk[-2].parameters())
    _check_weighted_sum(model, tasks, x, y, last, shared_params=last)
    _check_weighted_sum(
        model,
        tasks,
        x,
        y,
        list(model.shared_parameters()),
        shared_params=list(model.shared_parameters()),
        features=lambda out: out.features,
    )


def test_gramian_counts_direct_feature_use() -> None:
    """Task 'c' reads the features directly too: its row must be dL_c/dz over every path."""
    torch.manual_seed(0)
    model = TiedHeads()
    tasks = polytask.TaskSet([polytask.Task(n, "mse") for n in model.task_names])
    x = torch.randn(9, 6, dtype=torch.float64)
    y = {n: torch.randn(9, dtype=torch.float64) for n in model.task_names}
    rows = []
    for task in model.task_names:
        out = model(x)
        z = out.shared_features()
        (g,) = torch.autograd.grad(tasks.losses(out, y)[task], z)
        rows.append(g.flatten())
    J = torch.stack(rows)
    out = model(x)
    result = polytask.backward(
        tasks.losses(out, y), polytask.balancers.create("mgda"), features=out.features
    )
    torch.testing.assert_close(result.gramian, J @ J.T, rtol=1e-10, atol=1e-12)
    # At the parameter level the chain through the shared tensor stays exact: the same
    # Gramian with the features given as without them.
    grams = []
    for features in (True, False):
        out = model(x)
        extra = {"features": out.features} if features else {}
        grams.append(
            polytask.backward(
                tasks.losses(out, y),
                polytask.balancers.create("mgda"),
                shared_params=list(model.trunk.parameters()),
                **extra,
            ).gramian
        )
    torch.testing.assert_close(grams[0], grams[1], rtol=1e-10, atol=1e-12)


def test_chain_refuses_a_head_that_uses_a_shared_parameter() -> None:
    model, tasks, x, y = regression_problem(T=2, seed=1)
    out = model(x)
    shared_weight = model.trunk[0].weight
    preds = dict(out.predictions)
    preds["t0"] = preds["t0"] + shared_weight.sum()  # a head reads a trunk weight directly
    with pytest.raises(ValueError, match="uses a shared parameter directly"):
        polytask.backward(
            tasks.losses(preds, y),
            polytask.balancers.create("mgda"),
            features=out.features,
            shared_params=model.shared_parameters(),
        )


@pytest.mark.parametrize(
    ("rows", "other_rows", "columns"),
    [(8, 8, 131072), (3, 5, 40000 + 17), (12, 12, 32768), (2, 2, 100), (16, 16, 50000)],
)
def test_row_products_match_float64(rows: int, other_rows: int, columns: int) -> None:
    """The chunked CPU path (few long rows, with and without a remainder chunk) and the plain
    path both give ``a @ b.T`` as computed in float64."""
    from polytask.gradients.gramian import row_products

    generator = torch.Generator().manual_seed(rows * 1000 + columns)
    a = torch.randn(rows, columns, generator=generator)
    b = torch.randn(other_rows, columns, generator=generator)
    expected = a.double() @ b.double().T
    got = row_products(a, b)
    assert got.shape == (rows, other_rows) and got.dtype == torch.float32
    # float32 sums of `columns` products of unit normals: error ~ 1e-7 * sqrt(columns) * ...
    assert torch.allclose(got.double(), expected, atol=2e-3, rtol=1e-5)
    assert torch.allclose(row_products(a.double(), b.double()), expected, atol=1e-9, rtol=1e-12)


@pytest.mark.parametrize("level", ["representation", "parameter-branches"])
@pytest.mark.parametrize("preset", [False, True])
def test_failed_weights_raise_and_leave_gradients_untouched(level: str, preset: bool) -> None:
    """Non-finite weights raise BalancerError naming the method, and no gradient is left
    behind: not the heads' unweighted ones, not the shared parameters'."""
    from polytask.balancers import GramianWeighting
    from polytask.gradients import BalancerError

    class Broken(GramianWeighting):
        """Returns NaN weights."""

        def gramian_weights(self, gramian: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
            return torch.full_like(losses, float("nan"))

    model, tasks, x, y = regression_problem(T=3)
    model.zero_grad(set_to_none=True)
    if preset:
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.25)
    before = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    out = model(x)
    kwargs = {"features": out.features}
    if level == "parameter-branches":
        kwargs["shared_params"] = model.shared_parameters()
    with pytest.raises(BalancerError, match="Broken produced non-finite weights"):
        polytask.backward(tasks.losses(out, y), Broken(), **kwargs)
    for p, old in zip(model.parameters(), before, strict=True):
        if old is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, old)
