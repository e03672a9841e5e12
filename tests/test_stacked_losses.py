"""Losses handed to the engine as one ``torch.stack``ed tensor are taken apart again (issue
22): the same gradients as a list, and per-task passes that reach only their own head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import polytask
from polytask.balancers import create


class PlainModel(nn.Module):
    """A user's own model: an MLP trunk and T heads reading its output tensor directly."""

    def __init__(self, T: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(6, 16), nn.Tanh())
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1)) for _ in range(T)
        )

    def forward(self, x):
        z = self.trunk(x)
        return z, [head(z).squeeze(-1) for head in self.heads]


def _problem(T: int = 4) -> tuple[PlainModel, torch.Tensor, torch.Tensor]:
    """A fresh seeded model, inputs ``(32, 6)`` and targets ``(T, 32)``."""
    torch.manual_seed(0)
    model = PlainModel(T).double()
    return model, torch.randn(32, 6, dtype=torch.float64), torch.randn(T, 32, dtype=torch.float64)


def _given(form: str, losses: list[torch.Tensor]):
    """The losses as a user may pass them: a list, one ``torch.stack``, or a dict."""
    if form == "stacked":
        return torch.stack(losses)
    if form == "dict":
        return {f"task{t}": loss for t, loss in enumerate(losses)}
    return losses


def _step(form: str, level: str, name: str, counts: list[int] | None = None):
    model, x, y = _problem()
    z, outs = model(x)
    if counts is not None:
        for t, out in enumerate(outs):
            # Called with None where the gradient is undefined (a pruned pass): not counted.
            out.register_hook(lambda g, t=t: counts.__setitem__(t, counts[t] + (g is not None)))
    losses = [((o - y[t]) ** 2).mean() for t, o in enumerate(outs)]
    given = _given(form, losses)
    where = (
        {"features": z}
        if level == "representation"
        else {"shared_params": list(model.trunk.parameters())}
    )
    result = polytask.backward(given, create(name), **where)
    return result, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["mgda", "upgrad", "pcgrad", "graddrop", "equal"])
@pytest.mark.parametrize("level", ["representation", "parameter"])
def test_stacked_losses_give_the_list_form_gradients(name: str, level: str) -> None:
    listed, grads = _step("list", level, name)
    stacked, grads_stacked = _step("stacked", level, name)
    torch.testing.assert_close(stacked.weights, listed.weights)
    for a, b in zip(grads, grads_stacked, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("level", "expected"), [("representation", 1), ("parameter", 2)])
def test_per_task_passes_reach_only_their_own_head(level: str, expected: int) -> None:
    """Each head's output receives a gradient only in passes for its own task, never T + 1
    times: at the representation level once (the one hooked backward through the heads), at
    the parameter level twice (its own per-task pass, then the heads' weighted backward)."""
    counts = [0] * 4
    result, _ = _step("stacked", level, "mgda", counts)
    assert counts == [expected] * 4
    if level == "representation":
        assert result.path == "consumers"


def test_a_tensor_that_is_not_a_stack_warns() -> None:
    torch.manual_seed(0)
    model = PlainModel(2).double()
    z, outs = model(torch.randn(8, 6, dtype=torch.float64))
    losses = torch.stack([o.pow(2).mean() for o in outs]) * 1.0  # a product, not a stack
    with pytest.warns(RuntimeWarning, match="torch.stack"):
        polytask.backward(losses, create("mgda"), features=z)


@pytest.mark.parametrize("form", ["list", "stacked", "dict"])
@pytest.mark.parametrize("name", ["mgda", "upgrad", "cagrad", "nash_mtl", "pcgrad"])
def test_a_plain_model_gets_the_one_backward_path_with_exact_gradients(
    name: str, form: str
) -> None:
    """Heads reading one plain tensor, the losses as a list, one stack or a dict: per-task
    feature gradients by one hooked backward, equal to the per-task reference (a list of
    losses, method="loop")."""
    results, grads = {}, {}
    for method in ("auto", "loop"):
        model, x, y = _problem()
        z, outs = model(x)
        losses = [((o - y[t]) ** 2).mean() for t, o in enumerate(outs)]
        given = _given(form, losses) if method == "auto" else losses
        results[method] = polytask.backward(given, create(name), features=z, method=method)
        grads[method] = [p.grad.clone() for p in model.parameters()]
    assert results["auto"].path == "consumers" and results["loop"].path == "per-task"
    torch.testing.assert_close(results["auto"].gramian, results["loop"].gramian)
    torch.testing.assert_close(results["auto"].weights, results["loop"].weights)
    for a, b in zip(grads["auto"], grads["loop"], strict=True):
        torch.testing.assert_close(a, b)


def test_a_plain_model_with_a_cross_head_loss_stays_exact() -> None:
    """ESMM-style: task 1's loss reads task 0's head too; the hooked path would be wrong, so
    the engine takes the per-task passes."""
    torch.manual_seed(0)
    model = PlainModel(2).double()
    z, (a, b) = model(torch.randn(16, 6, dtype=torch.float64))
    losses = [a.pow(2).mean(), (a.sigmoid() * b).pow(2).mean()]
    auto = polytask.backward(losses, create("mgda"), features=z, retain_graph=True)
    rows = torch.stack([torch.autograd.grad(l, z, retain_graph=True)[0].flatten() for l in losses])
    assert auto.path == "per-task"
    torch.testing.assert_close(auto.gramian, rows @ rows.T)


@pytest.mark.parametrize("form", ["list", "stacked", "dict"])
@pytest.mark.parametrize("tapped", [False, True])
def test_a_plain_model_at_the_parameter_level_takes_the_one_backward_path(
    form: str, tapped: bool
) -> None:
    """features=z with shared_params: per-task feature gradients by the hooked backward, then
    the trunk's Jacobian (or, with the trunk's Linear layers tapped, the Gramian from
    activations); equal to the per-task reference without features."""
    from polytask.gradients import LinearTaps

    results, grads = {}, {}
    for kind in ("fast", "reference"):
        model, x, y = _problem()
        taps = LinearTaps([model.trunk])
        with taps:
            z, outs = model(x)
        losses = [((o - y[t]) ** 2).mean() for t, o in enumerate(outs)]
        given = _given(form, losses) if kind == "fast" else losses
        shared = list(model.trunk.parameters())
        if kind == "fast":
            extra = {"features": z, "taps": taps} if tapped else {"features": z}
        else:
            extra = {"method": "loop"}
        results[kind] = polytask.backward(given, create("upgrad"), shared_params=shared, **extra)
        grads[kind] = [p.grad.clone() for p in model.parameters()]
    assert results["fast"].path == "consumers"
    assert results["fast"].gramian_from == ("activations" if tapped else "jacobian")
    assert results["reference"].path == "per-task"
    torch.testing.assert_close(results["fast"].gramian, results["reference"].gramian)
    for a, b in zip(grads["fast"], grads["reference"], strict=True):
        torch.testing.assert_close(a, b)


class ConvModel(nn.Module):
    """A user's model whose trunk mixes a convolution (not tapped) and a linear layer."""

    def __init__(self, T: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv1d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 16), nn.Tanh()
        )
        self.heads = nn.ModuleList(nn.Linear(16, 1) for _ in range(T))

    def forward(self, x):
        z = self.trunk(x.unsqueeze(1))
        return z, [head(z).squeeze(-1) for head in self.heads]


def test_taps_over_a_layer_they_cannot_record_fall_back_exactly_and_say_so() -> None:
    """LinearTaps([trunk]) over a trunk with a Conv1d: the records cannot give the Gramian,
    so the exact trunk Jacobian does (result.gramian_from == 'jacobian'), equal to the
    per-task reference, and one warning names the cause."""
    from polytask.gradients import LinearTaps

    results, grads = {}, {}
    for kind in ("tapped", "reference"):
        torch.manual_seed(0)
        model = ConvModel(3).double()
        x, y = torch.randn(16, 6, dtype=torch.float64), torch.randn(3, 16, dtype=torch.float64)
        taps = LinearTaps([model.trunk])
        with taps:
            z, outs = model(x)
        losses = [((o - y[t]) ** 2).mean() for t, o in enumerate(outs)]
        shared = list(model.trunk.parameters())
        if kind == "tapped":
            with pytest.warns(RuntimeWarning, match="convolutions, embeddings"):
                results[kind] = polytask.backward(
                    losses, create("upgrad"), shared_params=shared, features=z, taps=taps
                )
        else:
            results[kind] = polytask.backward(
                losses, create("upgrad"), shared_params=shared, method="loop"
            )
        grads[kind] = [p.grad.clone() for p in model.parameters()]
    assert results["tapped"].gramian_from == "jacobian"
    assert results["tapped"].path == "consumers"
    torch.testing.assert_close(results["tapped"].gramian, results["reference"].gramian)
    for a, b in zip(grads["tapped"], grads["reference"], strict=True):
        torch.testing.assert_close(a, b)


def test_a_loss_weighting_on_any_loss_tensor_does_not_warn() -> None:
    import warnings

    model, x, _ = _problem(2)
    _, outs = model(x)
    losses = torch.stack([o.pow(2).mean() for o in outs]) * 1.0  # not a stack: no per-task pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        polytask.backward(losses, create("equal"))
