"""MNIST in its original IDX format (LeCun, Cortes & Burges; LeCun et al. 1998)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polytask.data.files import DataFile, resolve

_SOURCES = (
    "https://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)


def _file(name: str, md5: str, alternatives: tuple[tuple[str, str], ...] = ()) -> DataFile:
    return DataFile(name, md5, tuple(base + name for base in _SOURCES), alternatives)


MNIST_FILES = {
    "train_images": _file(
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        # The copy in shared/data: official images reconstructed to +-1 grey level (its
        # SOURCE.md says how); accepted in place of the official file.
        (("train-images-idx3-ubyte-approx.gz", "072c90f1665b5e6a6d273308bedec1fa"),),
    ),
    "train_labels": _file("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": _file("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": _file("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def read_idx(path: Path) -> Tensor:
    """Read a (gzipped) IDX file into a uint8 tensor with the file's dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte data
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims} values, found {data.size} (truncated file?)")
    return torch.from_numpy(data.copy()).reshape(dims)


def load_mnist(root: str | Path | None = None) -> dict[str, Tensor]:
    """The four MNIST arrays: ``train_images`` ``(60000, 28, 28)`` uint8, ``train_labels``
    ``(60000,)``, ``test_images`` ``(10000, 28, 28)``, ``test_labels`` ``(10000,)``."""
    arrays = {key: read_idx(resolve("mnist", f, root)) for key, f in MNIST_FILES.items()}
    for split in ("train", "test"):
        if arrays[f"{split}_images"].shape[0] != arrays[f"{split}_labels"].shape[0]:
            raise ValueError(f"MNIST {split}: image and label counts differ")
    return arrays
