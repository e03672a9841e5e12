"""CUDA: the engine and the trainer keep everything on the device (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

import polytask
from polytask.gradients import gramian, parameter_jacobian
from polytask.training import Trainer, TrainerConfig, build_optimizer

from .conftest import level_kwargs, regression_problem
from .test_training import TASKS, make_data

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("level", ["representation", "parameter"])
@pytest.mark.parametrize("balancer", ["equal", "mgda", "pcgrad"])
def test_backward_on_cuda_matches_cpu(level: str, balancer: str) -> None:
    grads = {}
    for device in ("cpu", "cuda"):
        model, tasks, x, y = regression_problem(T=3, seed=4)
        model = model.to(device)
        x, y = x.to(device), {k: v.to(device) for k, v in y.items()}
        out = model(x)
        kwargs = level_kwargs(level, model, out)
        result = polytask.backward(
            tasks.losses(out, y), polytask.balancers.create(balancer), **kwargs
        )
        assert result.weights is not None and result.weights.device.type == device
        grads[device] = [p.grad.cpu() for p in model.parameters()]
    for a, b in zip(grads["cpu"], grads["cuda"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


def test_gramian_on_cuda() -> None:
    model, tasks, x, y = regression_problem(T=4, seed=2)
    model, x = model.cuda(), x.cuda()
    y = {k: v.cuda() for k, v in y.items()}
    losses = tasks.losses(model(x), y)
    blocks = parameter_jacobian(
        losses.values_list(), losses.names, list(model.shared_parameters()), method="vmap"
    )
    G = gramian(blocks)
    assert G.device.type == "cuda"
    J = torch.cat([b.flatten(1) for b in blocks], 1)
    torch.testing.assert_close(G, J @ J.T)


@pytest.mark.parametrize("amp", [False, True])
def test_trainer_on_cuda_with_amp(amp: bool) -> None:
    torch.manual_seed(0)
    model = polytask.models.create("shared_bottom", heads={"reg": 1, "cls": 3}, input_dim=5)
    balancer = polytask.balancers.create("mgda")
    trainer = Trainer(
        model,
        polytask.TaskSet(TASKS),
        balancer,
        build_optimizer("adam", model, lr=1e-2),
        config=TrainerConfig(epochs=3, batch_size=16, device="cuda", amp=amp, progress=False),
    )
    assert next(trainer.model.parameters()).device.type == "cuda"
    before = trainer.evaluate(make_data(64, seed=3))["loss"]
    trainer.fit(make_data(), make_data(32, seed=1))
    after = trainer.evaluate(make_data(64, seed=3))["loss"]
    assert sum(after.values()) < sum(before.values())


CUDA_MODELS = ["mmoe", "ple", "cross_stitch", "mtan", "mrn", "transformer", "esmm",
               "mmoe_features", "small_towers", "ufo_rejoined"]  # fmt: skip


@pytest.mark.parametrize("name", CUDA_MODELS)
def test_architectures_on_cuda_match_cpu(name: str) -> None:
    """Every kind of architecture keeps its tensors (buffers, offsets, masks) on the device
    and computes what it computes on the CPU."""
    from .test_architectures import CASES, batch

    case = CASES[name]
    grads, predictions = {}, {}
    for device in ("cpu", "cuda"):
        model = case.build().to(device)
        inputs, targets = batch(case)

        def move(t: torch.Tensor, device: str = device) -> torch.Tensor:
            return t.to(device)

        inputs = (
            {k: move(v) for k, v in inputs.items()} if isinstance(inputs, dict) else move(inputs)
        )
        out = model(inputs)
        losses = polytask.TaskSet(case.tasks()).losses(
            out, {k: move(v) for k, v in targets.items()}
        )
        penalty = model.penalty()
        if penalty is not None:
            penalty.backward(retain_graph=True)
        polytask.backward(losses, polytask.balancers.create("mgda"), features=out.features)
        predictions[device] = {k: v.detach().cpu() for k, v in out.predictions.items()}
        grads[device] = [p.grad.cpu() for p in model.parameters() if p.grad is not None]
    for task, value in predictions["cpu"].items():
        torch.testing.assert_close(predictions["cuda"][task], value, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads["cpu"], grads["cuda"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_a_crf_head_on_cuda_matches_cpu() -> None:
    """The BiLSTM-CRF's losses, gradients and decoding on CUDA equal the CPU's."""
    from .test_crf import crf_model_and_tasks, tagging_problem

    tokens, targets = tagging_problem(n=16)
    results = {}
    for device in ("cpu", "cuda"):
        model, tasks = crf_model_and_tasks()
        model = model.to(device)
        out = model(tokens.to(device))
        losses = tasks.losses(out, {k: v.to(device) for k, v in targets.items()})
        polytask.backward(losses, polytask.balancers.create("upgrad"), features=out.features)
        decoded = tasks.readable(out)["slots"].detach()
        grad = model.heads["slots"].transitions.grad
        results[device] = [losses.detached().cpu(), decoded.cpu(), grad.cpu()]
    for a, b in zip(results["cpu"], results["cuda"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
