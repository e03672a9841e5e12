"""Shared fixtures: small float64 multi-task problems."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from polytask import Task, TaskSet
from polytask.models import SharedBottom

DATA_ROOT = Path(os.environ.get("POLYTASK_DATA", Path(__file__).parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _deterministic() -> Iterator[None]:
    torch.manual_seed(0)
    yield


def regression_problem(
    T: int = 3, batch: int = 16, in_dim: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[SharedBottom, TaskSet, torch.Tensor, dict[str, torch.Tensor]]:
    """A random shared-bottom regression model with T tasks, inputs and targets."""
    torch.manual_seed(seed)
    names = [f"t{i}" for i in range(T)]
    model = SharedBottom(
        dict.fromkeys(names, 1),
        input_dim=in_dim,
        trunk_dims=(8, 5),
        head_dims=(4,),
        activation="tanh",
    ).to(dtype)
    tasks = TaskSet([Task(n, "mse") for n in names])
    x = torch.randn(batch, in_dim, dtype=dtype)
    y = {n: torch.randn(batch, dtype=dtype) * (i + 1) for i, n in enumerate(names)}
    return model, tasks, x, y


def have_data(name: str) -> bool:
    """Whether the local copy of data set folder ``name`` exists."""
    return (DATA_ROOT / name).is_dir()


def level_kwargs(level: str, model: SharedBottom, outputs) -> dict:
    """The ``polytask.backward`` keyword that selects ``level`` for ``model``'s outputs."""
    if level == "representation":
        return {"features": outputs.features}
    return {"shared_params": model.shared_parameters()}
