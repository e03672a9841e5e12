"""Yeast gene functions (Elisseeff & Weston 2001): 14 binary labels, Mulan's split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from scipy.io import arff

from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, matrix_splits
from polytask.tasks.task import Task

FOLDER = "yeast_multilabel"
TRAIN = DataFile("yeast-train.arff.gz", "5c8ab19f66f72e38d02fc52ccb06db16")
TEST = DataFile("yeast-test.arff.gz", "b8c3dae090ac634e78a669cbe469ab58")
TRAIN_ROWS, TEST_ROWS, FEATURES, LABELS = 1_500, 917, 103, 14


def _read(path: Path, rows: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rt") as handle:
        data, _ = arff.loadarff(handle)
    names = list(data.dtype.names or ())
    if len(data) != rows or len(names) != FEATURES + LABELS:
        raise ValueError(f"{path}: expected {rows} rows of {FEATURES + LABELS} attributes")
    x = np.stack([data[n].astype(np.float64) for n in names[:FEATURES]], axis=1)
    y = np.stack([np.char.decode(data[n]).astype(np.float64) for n in names[FEATURES:]], axis=1)
    return x, y


@register("yeast")
def yeast(root: str | Path | None = None, val_fraction: float = 0.1, seed: int = 0) -> DataSplits:
    """Yeast (Elisseeff & Weston, NIPS 2001) with Mulan's train/test split: 103 gene
    expression features, 14 binary function labels = 14 tasks ``class_01`` ... ``class_14``
    (BCE, AUC). ``val_fraction`` of the training rows are held out for validation with
    ``seed``; inputs standardised with training statistics.
    """
    x_train, y_train = _read(resolve(FOLDER, TRAIN, root), TRAIN_ROWS)
    x_test, y_test = _read(resolve(FOLDER, TEST, root), TEST_ROWS)
    x = torch.as_tensor(np.concatenate([x_train, x_test]), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate([y_train, y_test]), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(TRAIN_ROWS, generator=g)
    n_val = round(TRAIN_ROWS * val_fraction)
    given = {
        "train": order[n_val:],
        "val": order[:n_val],
        "test": torch.arange(TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS),
    }
    tasks = [Task(f"class_{j + 1:02d}", "bce", metrics=("auc",)) for j in range(LABELS)]
    targets = {t.name: y[:, j] for j, t in enumerate(tasks)}
    return matrix_splits(
        "yeast", x, targets, tasks, None, seed,
        {"split": "Mulan: yeast-train (a seeded validation hold-out) / yeast-test"}, given=given,
    )  # fmt: skip
