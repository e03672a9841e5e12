"""In-memory multi-task datasets, sliced by index tensors (no per-sample collate)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

Inputs = Tensor | dict[str, Tensor]
"""A batch's inputs: one tensor ``(B, ...)`` or named tensors ``{name: (B, ...)}`` (for
example one entry per feature of a :class:`~polytask.models.FeatureSchema`)."""


def _map_inputs(inputs: Inputs, fn: Callable[[Tensor], Tensor]) -> Inputs:
    return {k: fn(v) for k, v in inputs.items()} if isinstance(inputs, dict) else fn(inputs)


def _rows(inputs: Inputs) -> int:
    first = next(iter(inputs.values()), None) if isinstance(inputs, dict) else inputs
    return 0 if first is None or first.dim() == 0 else int(first.shape[0])


@dataclass
class Batch:
    """One batch: inputs (a tensor or ``{name: tensor}``), ``{task: target}`` and optional
    ``{task: bool mask}`` (``(B,)``)."""

    inputs: Inputs
    targets: dict[str, Tensor]
    masks: dict[str, Tensor] | None = None

    def map(self, fn: Callable[[Tensor], Tensor]) -> Batch:
        """The batch with ``fn`` applied to every tensor (inputs, targets, masks)."""
        return Batch(
            _map_inputs(self.inputs, fn),
            {k: fn(v) for k, v in self.targets.items()},
            None if self.masks is None else {k: fn(v) for k, v in self.masks.items()},
        )

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        """The batch on ``device`` (a no-op when already there)."""
        return self.map(lambda x: x.to(device, non_blocking=non_blocking))

    def slice(self, start: int, stop: int) -> Batch:
        """Rows ``start:stop`` as views (no copy)."""
        return self.map(lambda x: x[start:stop])

    def __len__(self) -> int:
        return _rows(self.inputs)


class TensorTaskDataset:
    """A dataset held as tensors: ``inputs`` ``(N, ...)`` (or ``{name: (N, ...)}``),
    ``targets[t]`` ``(N, ...)``,
    optional ``masks[t]`` ``(N,)`` (``False`` = label missing).

    Batches are taken with one indexing operation per tensor (:meth:`take`), which is what
    makes tabular training fast; a per-row Python collate is never used.

    Raises:
        ValueError: the dataset is empty, or tensors disagree on the number of rows.
    """

    def __init__(
        self,
        inputs: Inputs,
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        name: str = "dataset",
    ) -> None:
        n = _rows(inputs)
        if n == 0:
            raise ValueError(f"{name}: the dataset is empty (0 rows)")
        if isinstance(inputs, dict):
            for key, tensor in inputs.items():
                if tensor.dim() == 0 or tensor.shape[0] != n:
                    raise ValueError(
                        f"{name}: input {key!r} has {tuple(tensor.shape)[:1]} rows but the "
                        f"first input has {n}"
                    )
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
        return _rows(self.inputs)

    def __getitem__(
        self, index: int | slice | Tensor | list[int]
    ) -> tuple[Inputs, dict[str, Tensor]]:
        """``(inputs, targets)`` of row ``index`` (an int: one row, as
        ``torch.utils.data.DataLoader`` asks) or of rows (a slice, list or index tensor: a
        batch in one indexing operation, e.g. with ``DataLoader(..., batch_size=None,
        sampler=BatchSampler(...))``). Missing labels are marked in the targets themselves
        (NaN in a float target, -1 in an integer one), which ``TaskSet.losses`` reads as
        missing, so every item is a pair whatever the masks."""
        if isinstance(index, list):
            index = torch.as_tensor(index, dtype=torch.long)
        batch = Batch(self.inputs, self.targets, self.masks).map(lambda x: x[index])
        return batch.inputs, marked_targets(batch.targets, batch.masks)

    @property
    def device(self) -> torch.device:
        """The device the dataset's tensors are on."""
        first = next(iter(self.targets.values()))
        return first.device

    @property
    def task_names(self) -> list[str]:
        """Names of the tasks with targets."""
        return list(self.targets)

    def take(self, index: Tensor) -> Batch:
        """The rows ``index`` (a 1-D long tensor) as a :class:`Batch`."""
        return Batch(self.inputs, self.targets, self.masks).map(lambda x: x[index])

    def select_tasks(self, names: list[str]) -> TensorTaskDataset:
        """The same rows with the targets (and masks) of ``names`` only."""
        missing = [n for n in names if n not in self.targets]
        if missing:
            raise KeyError(f"{self.name}: no targets for task(s) {missing}")
        masks = None if self.masks is None else {k: v for k, v in self.masks.items() if k in names}
        return TensorTaskDataset(
            self.inputs, {n: self.targets[n] for n in names}, masks or None, self.name
        )

    def subset(self, index: Tensor, name: str | None = None) -> TensorTaskDataset:
        """A new dataset with the rows ``index``."""
        batch = self.take(index)
        return TensorTaskDataset(batch.inputs, batch.targets, batch.masks, name or self.name)

    def to(self, device: torch.device | str) -> TensorTaskDataset:
        """The dataset on ``device`` (batches are then sliced there, with no copies)."""
        batch = Batch(self.inputs, self.targets, self.masks).to(device, non_blocking=False)
        return TensorTaskDataset(batch.inputs, batch.targets, batch.masks, self.name)


def marked_targets(
    targets: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None
) -> dict[str, Tensor]:
    """``targets`` with the entries that ``masks`` marks missing set to NaN (float targets)
    or -1 (integer targets): the in-band markers of missing labels."""
    if not masks:
        return dict(targets)
    out = {}
    for task, target in targets.items():
        mask = masks.get(task)
        if mask is None:
            out[task] = target
            continue
        while mask.dim() < target.dim():
            mask = mask.unsqueeze(-1)
        missing = torch.tensor(
            float("nan") if target.is_floating_point() else -1, dtype=target.dtype
        )
        out[task] = torch.where(mask, target, missing.to(target.device))
    return out
