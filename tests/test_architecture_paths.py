"""Every registered architecture: the engine's default representation-level path is the
one-backward branch path, and its Gramian and gradients equal the per-task reference."""

from __future__ import annotations

import pytest
import torch

import polytask
from polytask import Task, TaskSet
from polytask.balancers import create

# Built with other inputs (token ids; ESMM's fixed two tasks): covered by their own tests.
OTHER_INPUTS = {"transformer", "bilstm", "esmm"}
NAMES = [n for n in polytask.models.available() if n not in OTHER_INPUTS]


@pytest.mark.parametrize("name", NAMES)
def test_default_path_is_branches_and_exact(name: str) -> None:
    options: dict = {"heads": {"a": 1, "b": 1}}
    if "input_dim" in polytask.models.MODELS.get(name).options():
        options["input_dim"] = 6
    tasks = TaskSet([Task("a", "mse"), Task("b", "mse")])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 6, generator=g, dtype=torch.float64)
    y = {t: torch.randn(16, generator=g, dtype=torch.float64) for t in ("a", "b")}
    results, grads = {}, {}
    for method in ("auto", "loop"):
        torch.manual_seed(0)
        model = polytask.models.create(name, **options).double()
        out = model(x)
        result = polytask.backward(
            tasks.losses(out, y), create("mgda"), features=out.features, method=method
        )
        results[method] = result
        grads[method] = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    assert results["auto"].path == "branches"
    torch.testing.assert_close(results["auto"].gramian, results["loop"].gramian)
    for a, b in zip(grads["auto"], grads["loop"], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)
