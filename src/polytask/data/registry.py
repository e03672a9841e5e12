"""The dataset registry: ``load(name, root=..., split=..., **options)``, ``available()``."""

from __future__ import annotations

from typing import Any

from polytask._registry import Registry
from polytask.data.dataset import TensorTaskDataset
from polytask.data.splits import DataSplits

DATASETS: Registry[DataSplits] = Registry("dataset")
register = DATASETS.register


def load(name: str, *, split: str | None = None, **options: Any) -> DataSplits | TensorTaskDataset:
    """Load data set ``name``; all splits (:class:`DataSplits`), or one when ``split`` is
    ``"train"``, ``"val"`` or ``"test"``.

    Example:
        >>> import polytask.data as pd
        >>> data = pd.load("synthetic_correlation", correlation=0.9, num_samples=200)
        >>> [t.name for t in data.tasks]
        ['y1', 'y2']
    """
    splits = DATASETS.create(name, **options)
    return splits if split is None else splits.split(split)


def available() -> list[str]:
    """Names of every registered data set."""
    return DATASETS.available()


def describe() -> list[dict[str, Any]]:
    """One row per data set: name, summary and options with defaults."""
    return [{"name": e.name, "summary": e.summary, "options": e.options()} for e in DATASETS]
