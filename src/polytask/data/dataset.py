"""In-memory multi-task datasets, sliced by index tensors (no per-sample collate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Batch:
    """One batch: inputs, ``{task: target}`` and optional ``{task: bool mask}`` (``(B,)``)."""

    inputs: Tensor
    targets: dict[str, Tensor]
    masks: dict[str, Tensor] | None = None

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        """The batch on ``device`` (a no-op when already there)."""
        return Batch(
            self.inputs.to(device, non_blocking=non_blocking),
            {k: v.to(device, non_blocking=non_blocking) for k, v in self.targets.items()},
            None
            if self.masks is None
            else {k: v.to(device, non_blocking=non_blocking) for k, v in self.masks.items()},
        )

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


class TensorTaskDataset:
    """A dataset held as tensors: ``inputs`` ``(N, ...)``, ``targets[t]`` ``(N, ...)``,
    optional ``masks[t]`` ``(N,)`` (``False`` = label missing).

    Batches are taken with one indexing operation per tensor (:meth:`take`), which is what
    makes tabular training fast; a per-row Python collate is never used.

    Raises:
        ValueError: the dataset is empty, or tensors disagree on the number of rows.
    """

    def __init__(
        self,
        inputs: Tensor,
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        name: str = "dataset",
    ) -> None:
        n = int(inputs.shape[0]) if inputs.dim() > 0 else 0
        if n == 0:
            raise ValueError(f"{name}: the dataset is empty (0 rows)")
        if not targets:
            raise ValueError(f"{name}: no targets given")
        for task, tensor in {**targets, **(masks or {})}.items():
            if tensor.shape[0] != n:
                raise ValueError(
                    f"{name}: task {task!r} has {tensor.shape[0]} rows but inputs have {n}"
                )
        if masks is not None:
            for task, mask in masks.items():
                if task not in targets:
                    raise KeyError(f"{name}: mask for unknown task {task!r}")
                if mask.dtype != torch.bool:
                    raise TypeError(f"{name}: mask of task {task!r} must be bool, got {mask.dtype}")
        self.inputs = inputs
        self.targets = dict(targets)
        self.masks = dict(masks) if masks is not None else None
        self.name = name

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def task_names(self) -> list[str]:
        """Names of the tasks with targets."""
        return list(self.targets)

    def take(self, index: Tensor) -> Batch:
        """The rows ``index`` (a 1-D long tensor) as a :class:`Batch`."""
        return Batch(
            self.inputs[index],
            {k: v[index] for k, v in self.targets.items()},
            None if self.masks is None else {k: v[index] for k, v in self.masks.items()},
        )

    def subset(self, index: Tensor, name: str | None = None) -> TensorTaskDataset:
        """A new dataset with the rows ``index``."""
        batch = self.take(index)
        return TensorTaskDataset(batch.inputs, batch.targets, batch.masks, name or self.name)

    def to(self, device: torch.device | str) -> TensorTaskDataset:
        """The dataset on ``device`` (batches are then sliced there, with no copies)."""
        batch = Batch(self.inputs, self.targets, self.masks).to(device, non_blocking=False)
        return TensorTaskDataset(batch.inputs, batch.targets, batch.masks, self.name)
