"""The model protocol on the shared-bottom architecture."""

from __future__ import annotations

import pytest
import torch

import polytask
from polytask.models import SharedBottom, check_partition


def test_shared_bottom_shapes_and_partition() -> None:
    model = SharedBottom({"a": 1, "b": 4}, input_dim=6, trunk_dims=(8, 5))
    out = model(torch.randn(3, 6))
    assert out.predictions["a"].shape == (3, 1) and out.predictions["b"].shape == (3, 4)
    assert out.shared_features().shape == (3, 5)
    check_partition(model)
    shared = {id(p) for p in model.shared_parameters()}
    for task in model.task_names:
        assert shared.isdisjoint(id(p) for p in model.task_parameters(task))


def test_one_task_backward_leaves_other_heads_untouched() -> None:
    model = SharedBottom({"a": 1, "b": 1}, input_dim=4)
    out = model(torch.randn(5, 4))
    out.predictions["a"].sum().backward()
    assert all(p.grad is None for p in model.task_parameters("b"))
    assert all(p.grad is not None for p in model.task_parameters("a"))


def test_lenet_trunk_on_images() -> None:
    model = polytask.models.create("shared_bottom", heads={"l": 10, "r": 10}, trunk="lenet")
    out = model(torch.randn(2, 1, 28, 28))
    assert out.predictions["l"].shape == (2, 10)
    with pytest.raises(ValueError, match="28x28"):
        model(torch.randn(2, 1, 32, 32))


def test_partition_check_catches_overlap() -> None:
    model = SharedBottom({"a": 1}, input_dim=4)
    model.shared_modules = lambda: [model.trunk, model.towers["a"]]  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="both"):
        check_partition(model)


def test_model_errors() -> None:
    with pytest.raises(ValueError, match="input_dim"):
        SharedBottom({"a": 1})
    with pytest.raises(KeyError, match="Did you mean 'a'"):
        list(SharedBottom({"a": 1}, input_dim=2).task_parameters("aa"))
    with pytest.raises(KeyError, match="Did you mean 'shared_bottom'"):
        polytask.models.create("shared_botom", heads={"a": 1})
