"""Data: in-memory task datasets, batching by index, splits and loaders (``polytask.data``)."""

from polytask.data import (  # noqa: F401  (registration)
    adult,
    census_income,
    computer_survey,
    energy_efficiency,
    mixture,
    multi_mnist,
    parkinsons,
    recsys,
    sarcos,
    school,
    snips,
    synthetic,
    table,
    yeast,
)
from polytask.data.batching import IndexBatcher, IterableBatches, as_batch
from polytask.data.dataset import Batch, TensorTaskDataset
from polytask.data.files import DataFile, DataFileError, resolve
from polytask.data.registry import DATASETS, available, describe, load
from polytask.data.splits import DataSplits, InputSpec, random_partition

__all__ = [
    "DATASETS",
    "Batch",
    "DataFile",
    "DataFileError",
    "DataSplits",
    "IndexBatcher",
    "InputSpec",
    "IterableBatches",
    "TensorTaskDataset",
    "as_batch",
    "available",
    "describe",
    "load",
    "random_partition",
    "resolve",
]
