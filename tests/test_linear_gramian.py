"""The parameter-level Gramian of linear trunks from activations (polytask.gradients.linear)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import polytask
from polytask import Task, TaskSet
from polytask.gradients import gramian, parameter_jacobian
from polytask.gradients.linear import LinearTaps, output_gradients, taps_gramian


def mlp_model(T: int, dims=(16, 16)) -> polytask.models.SharedBottom:
    torch.manual_seed(0)
    heads = {f"t{i}": 1 for i in range(T)}
    return polytask.models.create(
        "shared_bottom", heads=heads, input_dim=16, trunk_dims=dims, head_dims=(8,)
    )


def step(model, x, y, balancer, taps):
    """One parameter-level backward; returns every parameter's gradient and the result."""
    tasks = TaskSet([Task(n, "mse") for n in model.task_names])
    model.zero_grad(set_to_none=True)
    with taps or torch.enable_grad():
        out = model(x)
    losses = tasks.losses(out, y)
    result = polytask.backward(
        losses, balancer, features=out.features, shared_params=model.shared_parameters(),
        taps=taps,
    )  # fmt: skip
    return [p.grad.clone() for p in model.parameters()], result


# batch 4: the activation form (N (in + T out) < T in out); batch 64: explicit weight blocks
@pytest.mark.parametrize("batch", [4, 64])
@pytest.mark.parametrize("method", ["mgda", "upgrad", "imtl_g"])
@pytest.mark.parametrize("bias", [True, False])
def test_taps_give_the_same_update_as_the_jacobian(monkeypatch, batch, method, bias) -> None:
    engine = sys.modules[
        "polytask.gradients.backward"
    ]  # the package exports a function of that name
    calls = []
    real = engine.taps_gramian
    monkeypatch.setattr(engine, "taps_gramian", lambda *a: calls.append(1) or real(*a))
    T = 3
    model = mlp_model(T)
    if not bias:  # trunk layers without bias: the weight's gradient alone
        for module in model.shared_modules():
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    layer.register_parameter("bias", None)
    x = torch.randn(batch, 16)
    y = {n: torch.randn(batch) for n in model.task_names}
    taps = LinearTaps(model.shared_modules())
    fast, fast_result = step(model, x, y, polytask.balancers.create(method), taps)
    assert len(taps.records) == 2 and calls == [1]  # both trunk layers recorded and used
    slow, slow_result = step(model, x, y, polytask.balancers.create(method), None)
    torch.testing.assert_close(fast_result.gramian, slow_result.gramian, rtol=1e-5, atol=1e-7)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_gramian_of_a_sequence_trunk_matches_float64_reference() -> None:
    # Linear layers on (B, L, in) tensors: every token is a row of the layer's input.
    torch.manual_seed(1)
    trunk = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6)).double()
    heads = [nn.Linear(6, 1).double() for _ in range(3)]
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    taps = LinearTaps([trunk])
    with taps:
        base = trunk(x).mean(dim=1)
    branches = [base.view_as(base) for _ in heads]
    losses = [h(b).pow(2).mean() for h, b in zip(heads, branches, strict=True)]
    rows = torch.stack(
        [
            torch.autograd.grad(loss, b, retain_graph=True)[0]
            for loss, b in zip(losses, branches, strict=True)
        ]
    )
    deltas = output_gradients(base, taps.records, rows)
    params = list(trunk.parameters())
    reference = gramian(parameter_jacobian(losses, ["a", "b", "c"], params, method="loop"))
    torch.testing.assert_close(taps_gramian(taps.records, deltas)[0], reference)
    assert taps.covering(base, params) is not None


def test_taps_are_not_used_when_a_layer_runs_twice_or_a_parameter_is_not_linear() -> None:
    torch.manual_seed(2)
    lin = nn.Linear(4, 4)
    taps = LinearTaps([lin])
    with taps:
        twice = lin(torch.relu(lin(torch.randn(3, 4))))
    assert taps.covering(twice, list(lin.parameters())) is None
    with taps:
        once = lin(torch.randn(3, 4)) + lin.weight.sum()  # the weight read outside its layer
    assert taps.covering(once, list(lin.parameters())) is None
    extra = nn.Parameter(torch.ones(4))
    with taps:
        scaled = lin(torch.randn(3, 4)) * extra
    assert taps.covering(scaled, [*lin.parameters(), extra]) is None
    with taps:
        plain = lin(torch.randn(3, 4))
    assert taps.covering(plain, list(lin.parameters())) is not None
    lin.bias.requires_grad_(False)
    assert taps.covering(plain, [lin.weight]) is None  # a frozen parameter in a tapped layer


def test_trainer_uses_taps_at_the_parameter_level_and_matches_the_jacobian_path() -> None:
    from polytask.data import Batch
    from polytask.training import Trainer, TrainerConfig, build_optimizer

    x = torch.randn(8, 16)
    y = {f"t{i}": torch.randn(8) for i in range(3)}
    grads = []
    for use_taps in (True, False):
        model = mlp_model(3)
        tasks = TaskSet([Task(n, "mse") for n in model.task_names])
        trainer = Trainer(
            model, tasks, polytask.balancers.create("mgda"), build_optimizer("sgd", model, lr=0.0),
            config=TrainerConfig(progress=False, level="parameter"),
        )  # fmt: skip
        if not use_taps:
            trainer.gradient_step._taps = lambda: None  # type: ignore[method-assign]
        trainer.train_step(Batch(x, y))
        grads.append([p.grad.clone() for p in model.parameters()])
        if use_taps:
            taps = trainer.gradient_step._linear_taps
            assert taps is not None and taps.records == []
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
