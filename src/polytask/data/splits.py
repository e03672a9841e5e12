"""Train/validation/test splits and the description of a loaded dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polytask.data.dataset import TensorTaskDataset
from polytask.tasks.task import Task

SPLITS = ("train", "val", "test")


@dataclass
class DataSplits:
    """A loaded multi-task dataset.

    Attributes:
        train, val, test: the splits (``val`` is used for model selection, ``test`` once).
        tasks: the tasks the dataset defines (loss, metrics, classes).
        input_shape: shape of one input row (without the batch axis).
        metadata: provenance: source files, split rule, seeds, warnings.
    """

    train: TensorTaskDataset
    val: TensorTaskDataset
    test: TensorTaskDataset
    tasks: list[Task]
    input_shape: tuple[int, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> TensorTaskDataset:
        """The split called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        dataset: TensorTaskDataset = getattr(self, name)
        return dataset


def random_partition(n: int, sizes: list[int], seed: int) -> list[Tensor]:
    """Disjoint random index sets of the given sizes from ``range(n)`` (seeded)."""
    if sum(sizes) > n:
        raise ValueError(f"cannot take {sum(sizes)} rows out of {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for size in sizes:
        parts.append(order[start : start + size])
        start += size
    return parts
