"""Data: batching, resume, files with checksums, MultiMNIST and synthetic construction."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from polytask.data import (
    DataFile,
    DataFileError,
    IndexBatcher,
    TensorTaskDataset,
    batching,
    load,
    resolve,
)
from polytask.data.mnist import MNIST_FILES, read_idx
from polytask.data.multi_mnist import overlay_pairs

from .conftest import DATA_ROOT, have_data


def dataset(n: int) -> TensorTaskDataset:
    return TensorTaskDataset(torch.arange(n).float()[:, None], {"t": torch.arange(n)})


def test_batcher_visits_every_row_once_per_epoch_in_new_orders() -> None:
    batcher = IndexBatcher(dataset(53), 8, seed=3)
    orders = []
    for _ in range(3):
        rows = torch.cat([b.targets["t"] for b in batcher])
        assert sorted(rows.tolist()) == list(range(53))
        orders.append(rows)
    assert not torch.equal(orders[0], orders[1]) and batcher.epoch == 3


def test_batcher_resume_mid_epoch_continues_sequence() -> None:
    full = IndexBatcher(dataset(40), 6, seed=1)
    expected = [b.targets["t"] for _ in range(2) for b in full]
    first = IndexBatcher(dataset(40), 6, seed=1)
    seen = []
    for i, batch in enumerate(first):
        seen.append(batch.targets["t"])
        if i == 3:
            break
    state = first.state_dict()
    second = IndexBatcher(dataset(40), 6, seed=1)
    second.load_state_dict(state)
    seen += [b.targets["t"] for b in second] + [b.targets["t"] for b in second]
    assert len(seen) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))
    with pytest.raises(ValueError, match="seed"):
        IndexBatcher(dataset(40), 6, seed=2).load_state_dict(state)


@pytest.mark.parametrize("gather_rows", [1, 13, 24, 100_000])
def test_batcher_blocks_give_the_batches_of_the_epoch_order(monkeypatch, gather_rows) -> None:
    # Rows are gathered a block of batches at a time; each batch must still be exactly the
    # epoch order's slice, across block boundaries, the last short batch and a resume.
    monkeypatch.setattr(batching, "GATHER_ROWS", gather_rows)
    data = TensorTaskDataset({"a": torch.arange(53) * 2, "b": torch.arange(53)[:, None]},
                             {"t": torch.arange(53)})  # fmt: skip
    batcher = IndexBatcher(data, 8, seed=5)
    order = batcher.order(0)
    batches = list(batcher)
    assert len(batches) == 7
    for i, batch in enumerate(batches):
        index = order[i * 8 : (i + 1) * 8]
        assert torch.equal(batch.targets["t"], index)
        assert torch.equal(batch.inputs["a"], index * 2)
        assert torch.equal(batch.inputs["b"][:, 0], index)
    resumed = IndexBatcher(data, 8, seed=5)
    resumed.load_state_dict({"epoch": 0, "position": 3, "seed": 5})
    rest = [b.targets["t"] for b in resumed]
    assert all(torch.equal(a, b.targets["t"]) for a, b in zip(rest, batches[3:], strict=True))


def test_corrupted_file_names_file_and_checksum(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"not the right bytes")
    file = DataFile("a.bin", "0" * 32, ("http://127.0.0.1:9/a.bin",))
    with pytest.raises(DataFileError, match=r"a\.bin is corrupted.*expected 0{32}"):
        resolve("toy", file, root=tmp_path)


def test_missing_file_without_network_says_so(tmp_path: Path, monkeypatch) -> None:
    file = DataFile("b.bin", "1" * 32, ("http://127.0.0.1:9/b.bin",))
    with pytest.raises(DataFileError, match=r"download failed \(no network\?\).*1{32}"):
        resolve("toy", file, root=tmp_path)
    assert not list((tmp_path / "toy").iterdir())  # no partial download left behind
    monkeypatch.setenv("POLYTASK_OFFLINE", "1")
    with pytest.raises(DataFileError, match="downloads are disabled"):
        resolve("toy", file, root=tmp_path)


def test_read_idx_round_trip(tmp_path: Path) -> None:
    data = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    header = (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (3, 4, 5))
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(header + data.numpy().tobytes())
    assert torch.equal(read_idx(path), data)
    with gzip.open(path, "wb") as handle:
        handle.write(header + data.numpy().tobytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_overlay_pairs_matches_construction() -> None:
    images = torch.zeros(2, 28, 28, dtype=torch.uint8)
    images[0, 0, 0] = 200  # top-left corner of digit 0
    images[1, 27, 27] = 100  # bottom-right corner of digit 1
    images[0, 10, 10] = 50
    images[1, 4, 4] = 70  # lands on canvas (10, 10): overlaps digit 0's 50 -> max 70
    out = overlay_pairs(images, torch.tensor([1, 0]))
    # Nearest resize 36 -> 28 samples canvas row floor(i * 36 / 28).
    src = [int(i * 36 / 28) for i in range(28)]
    canvas = torch.zeros(36, 36, dtype=torch.uint8)
    canvas[:28, :28] = images[0]
    canvas[6:34, 6:34] = torch.maximum(canvas[6:34, 6:34], images[1])
    assert torch.equal(out[0], canvas[src][:, src])
    assert int(canvas[10, 10]) == 70


def test_synthetic_correlation_orders_label_correlation() -> None:
    corr = []
    for p in (0.0, 0.5, 1.0):
        train = load("synthetic_correlation", correlation=p, num_samples=4000, split="train")
        y = torch.stack([train.targets["y1"], train.targets["y2"]])
        corr.append(float(torch.corrcoef(y)[0, 1]))
    assert corr[0] < corr[1] < corr[2] and corr[2] > 0.99


@pytest.mark.skipif(not have_data("mnist"), reason="local MNIST copy not found (POLYTASK_DATA)")
def test_multi_mnist_from_local_copy() -> None:
    data = load("multi_mnist", root=DATA_ROOT, train_size=2000, val_size=500, test_size=300)
    assert (len(data.train), len(data.val), len(data.test)) == (2000, 500, 300)
    assert data.train.inputs.shape == (2000, 1, 28, 28)
    for split in (data.train, data.val, data.test):
        for task in ("left", "right"):
            labels = split.targets[task]
            assert labels.min() >= 0 and labels.max() <= 9
    assert [t.name for t in data.tasks] == ["left", "right"]
    full = load("multi_mnist", root=DATA_ROOT)
    assert (len(full.train), len(full.val), len(full.test)) == (50_000, 10_000, 10_000)
    assert MNIST_FILES["test_labels"].md5 == "ec29112dd5afa0611ce80d1b7f02629c"
