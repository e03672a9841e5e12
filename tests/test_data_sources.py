"""Any data source: polytask's datasets in a torch DataLoader, and the Trainer on a user's own
DataLoader or stream (issue 15, defect 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from polytask.data import IterableBatches, as_batch

from .test_training import make_data, make_trainer, params


def test_dataset_rows_and_batches_mark_missing_labels_in_band() -> None:
    data = make_data(20)
    x, y = data[3]
    assert x.shape == (5,) and set(y) == {"reg", "cls"}
    assert data.masks is not None
    missing = ~data.masks["reg"]
    _, ys = data[torch.arange(20)]
    assert torch.isnan(ys["reg"][missing]).all() and not torch.isnan(ys["reg"][~missing]).any()
    loader = DataLoader(data, batch_size=8)
    xs, ys = next(iter(loader))
    assert xs.shape == (8, 5) and ys["cls"].dtype == torch.long


def test_trainer_on_a_dataloader_matches_the_index_batcher() -> None:
    """Same batches in the same order (no shuffling): the same trained weights."""
    train, val = make_data(), make_data(32, seed=1)
    from polytask.data import IndexBatcher

    own = make_trainer(None, epochs=2)
    own.fit(train, val, batcher=IndexBatcher(train, 16, shuffle=False), restore_best=False)
    loader = DataLoader(train, batch_size=16, shuffle=False)
    theirs = make_trainer(None, epochs=2)
    result = theirs.fit(loader, DataLoader(val, batch_size=16), restore_best=False)
    assert result.steps == 12
    for a, b in zip(params(own), params(theirs), strict=True):
        torch.testing.assert_close(a, b)


def test_fast_batched_dataloader_path() -> None:
    """``batch_size=None`` with a batch sampler: one indexing operation per batch."""
    train = make_data()
    loader = DataLoader(
        train, batch_size=None, sampler=BatchSampler(SequentialSampler(train), 16, False)
    )
    x, y = next(iter(loader))
    assert x.shape == (16, 5) and y["reg"].shape == (16,)
    make_trainer(None, epochs=1).fit(loader)


def test_resume_on_a_dataloader_continues_exactly(tmp_path: Path) -> None:
    train = make_data()
    loader = DataLoader(train, batch_size=16, shuffle=False)
    straight = make_trainer(tmp_path / "a", epochs=3)
    straight.fit(loader, restore_best=False)

    def crash(trainer, step: int) -> None:
        if step == 9:
            raise RuntimeError("simulated crash")

    first = make_trainer(tmp_path / "b", epochs=3, checkpoint_every=4)
    first.callbacks = (crash,)
    with pytest.raises(RuntimeError):
        first.fit(loader, restore_best=False)
    resumed = make_trainer(tmp_path / "b", epochs=3, checkpoint_every=4)
    resumed.fit(loader, resume=True, restore_best=False)
    for a, b in zip(params(straight), params(resumed), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_stream_without_length_and_bad_items() -> None:
    train = make_data()

    class Stream:
        def __iter__(self):
            for start in range(0, len(train), 32):
                yield train[start : start + 32]

    assert len(IterableBatches(Stream())) == 0  # unknown length
    make_trainer(None, epochs=1).fit(Stream())
    with pytest.raises(TypeError, match="a batch must be"):
        as_batch({"x": 1})
