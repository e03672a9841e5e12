"""A seeded, resumable batcher over a :class:`TensorTaskDataset`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import torch
from torch import Tensor

from polytask.data.dataset import Batch, TensorTaskDataset


class Batches(Protocol):
    """What the trainer needs of a batcher: epochs of batches, resumable from
    :meth:`state_dict` (``epoch``, ``position``)."""

    epoch: int
    position: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Batch]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class SeededPosition:
    """The resumable state shared by batchers whose batches are recomputed from
    ``(seed, epoch, position)``."""

    seed: int
    epoch: int
    position: int

    def state_dict(self) -> dict[str, Any]:
        """``{epoch, position, seed}``: enough to continue the exact sequence of batches."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; refuses a state from a different seed."""
        if state["seed"] != self.seed:
            raise ValueError(
                f"batcher state was saved with seed {state['seed']}, this batcher has {self.seed}"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


GATHER_ROWS = 16_384
"""Rows an :class:`IndexBatcher` gathers at once (a block of whole batches)."""


class IndexBatcher(SeededPosition):
    """Yields batches of a dataset by index slicing, one epoch per iteration.

    Each epoch's order is a permutation drawn from a generator seeded by ``(seed, epoch)``:
    different every epoch, identical across runs, and recomputable from two integers, so
    :meth:`state_dict` is just ``{epoch, position}`` and a resumed run continues mid-epoch
    with exactly the batches an uninterrupted run would have seen.

    Args:
        dataset: the data.
        batch_size: rows per batch (>= 1).
        shuffle: permute the rows each epoch (``False``: dataset order).
        seed: base seed of the per-epoch permutations.
        drop_last: drop the last incomplete batch.
    """

    def __init__(
        self,
        dataset: TensorTaskDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and len(dataset) < batch_size:
            raise ValueError(
                f"{dataset.name}: {len(dataset)} rows make no full batch of {batch_size} "
                "with drop_last=True"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> Tensor:
        """The row order of ``epoch`` (on the dataset's device)."""
        n = len(self.dataset)
        device = self.dataset.device
        if not self.shuffle:
            return torch.arange(n, device=device)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(n, generator=generator).to(device)

    def __iter__(self) -> Iterator[Batch]:
        """The rest of the current epoch; the epoch counter advances when it is exhausted.

        Rows are gathered a block of batches at a time (about :data:`GATHER_ROWS` rows, one
        indexing per tensor) and each batch is a slice (a view) of its block: a data set with
        many named inputs costs one gather per tensor per block, not per batch."""
        order = self.order(self.epoch)
        total = len(self)
        per_block = max(1, GATHER_ROWS // self.batch_size)
        while self.position < total:
            first = self.position
            last = min(total, first + per_block)
            start = first * self.batch_size
            block = self.dataset.take(order[start : last * self.batch_size])
            for position in range(first, last):
                offset = (position - first) * self.batch_size
                self.position = position + 1
                yield block.slice(offset, offset + self.batch_size)
        self.epoch += 1
        self.position = 0


_END = object()


class IterableBatches:
    """Any re-iterable source of batches (a ``torch.utils.data.DataLoader``, a generator
    function's results in a list, a streaming reader) as the trainer's :class:`Batches`.

    Each item is a :class:`~polytask.data.Batch` or a tuple ``(inputs, targets)`` /
    ``(inputs, targets, masks)`` (missing labels may also be marked in the targets: NaN,
    or a negative class). One pass over the source is one epoch. :meth:`state_dict` is
    ``{epoch, position}``; a resumed epoch skips the ``position`` batches already trained, so
    a resumed run continues exactly only when the source gives the same batches in the same
    order again (a ``DataLoader`` with ``shuffle=False``, or a seeded sampler). The source's
    own random draws are fenced off from torch's global generator, so they do not change
    training's draws (dropout). For exact resume with shuffling, use :class:`IndexBatcher`
    on a :class:`~polytask.data.TensorTaskDataset`.
    """

    def __init__(self, source: Iterable[Any]) -> None:
        self.source = source
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        try:
            return len(self.source)  # type: ignore[arg-type]
        except TypeError:
            return 0  # unknown (a stream)

    def __iter__(self) -> Iterator[Batch]:
        skip = self.position
        with torch.random.fork_rng(devices=[]):
            items = iter(self.source)
        i = 0
        while True:
            # The source draws from torch's global generator (a DataLoader draws its base
            # seed, a RandomSampler its permutation); fenced off, so that training's own
            # draws (dropout) are the same whatever the source does, and on resume.
            with torch.random.fork_rng(devices=[]):
                item = next(items, _END)
            if item is _END:
                break
            i += 1
            if i <= skip:
                continue
            self.position = i
            yield as_batch(item)
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict[str, Any]:
        """``{epoch, position}``."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def as_batch(item: Any) -> Batch:
    """A :class:`Batch` from a batch item: a ``Batch``, or ``(inputs, targets)`` /
    ``(inputs, targets, masks)``; anything else raises naming what was found."""
    if isinstance(item, Batch):
        return item
    if isinstance(item, tuple | list) and len(item) in (2, 3) and isinstance(item[1], dict):
        masks = item[2] if len(item) == 3 else None
        return Batch(item[0], dict(item[1]), None if masks is None else dict(masks))
    raise TypeError(
        "a batch must be (inputs, {task: targets}) or (inputs, targets, {task: masks}) or a "
        f"polytask.data.Batch, got {type(item).__name__}"
    )
