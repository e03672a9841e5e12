"""Tabular preprocessing fitted on the training split only.

Categorical columns become integer codes (``0`` is reserved for a value never seen in
training), continuous columns are standardised with the training mean and standard
deviation. Features come out either one-hot (one float matrix, for any MLP) or as a dict of
codes plus one dense block for a :class:`~polytask.models.FeatureSchema` input layer.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from polytask.data.dataset import TensorTaskDataset
from polytask.data.splits import DataSplits, InputSpec
from polytask.tasks.task import Task

Encoding = Literal["onehot", "embedding"]


def read_csv(path: Path, skip_first: bool = False, header: bool = False) -> list[list[str]]:
    """Rows of a comma-separated file (``.gz`` too), spaces after commas skipped; blank
    lines are skipped."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        rows = [r for r in csv.reader(handle, skipinitialspace=True) if r and any(r)]
    if skip_first or header:
        rows = rows[1:]
    return rows


@dataclass
class TabularEncoder:
    """Codes for categorical columns and standardisation for continuous ones, fitted on the
    training rows.

    Attributes:
        names: column names of the features, categorical then continuous, in order.
        vocab: per categorical column, ``{value: code}`` over the sorted training values,
            codes from 1 (0 = unseen).
        mean, std: per continuous column, training mean and standard deviation.
    """

    categorical: list[int]
    continuous: list[int]
    names: list[str]
    vocab: list[dict[str, int]]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(
        cls,
        rows: Sequence[Sequence[str]],
        categorical: Sequence[int],
        continuous: Sequence[int],
        names: Sequence[str],
    ) -> TabularEncoder:
        """Fit on the training rows (the only split preprocessing may look at)."""
        columns = list(zip(*rows, strict=True))
        vocab = [{v: k + 1 for k, v in enumerate(sorted(set(columns[c])))} for c in categorical]
        dense = np.array([np.fromiter(map(float, columns[c]), np.float64) for c in continuous]).T
        mean = dense.mean(axis=0) if len(continuous) else np.zeros(0)
        std = dense.std(axis=0) if len(continuous) else np.zeros(0)
        std = np.where(std > 0, std, 1.0)
        picked = [names[c] for c in categorical] + [names[c] for c in continuous]
        return cls(list(categorical), list(continuous), picked, vocab, mean, std)

    def codes(self, rows: Sequence[Sequence[str]]) -> Tensor:
        """Categorical codes ``(N, C)`` (0 for values unseen in training)."""
        columns = list(zip(*rows, strict=True)) if rows else []
        out = np.zeros((len(rows), len(self.categorical)), dtype=np.int64)
        for j, (c, vocab) in enumerate(zip(self.categorical, self.vocab, strict=True)):
            out[:, j] = np.fromiter(map(vocab.get, columns[c], repeat(0)), np.int64, len(rows))
        return torch.from_numpy(out)

    def dense(self, rows: Sequence[Sequence[str]]) -> Tensor:
        """Standardised continuous columns ``(N, D)``."""
        columns = list(zip(*rows, strict=True)) if rows else []
        values = np.array(
            [np.fromiter(map(float, columns[c]), np.float64) for c in self.continuous]
        )
        values = values.T.reshape(len(rows), len(self.continuous))
        return torch.tensor((values - self.mean) / self.std, dtype=torch.float32)

    def onehot_width(self) -> int:
        """Width of :meth:`transform` with ``onehot``: one slot per training value plus one
        for unseen values, per categorical column, plus the continuous columns."""
        return sum(len(v) + 1 for v in self.vocab) + len(self.continuous)

    def transform(
        self, rows: Sequence[Sequence[str]], encoding: Encoding
    ) -> Tensor | dict[str, Tensor]:
        """``onehot``: one float matrix ``(N, onehot_width)``; ``embedding``: ``{column: codes
        (N,)}`` for each categorical column and ``{"dense": (N, D)}``."""
        codes, dense = self.codes(rows), self.dense(rows)
        if encoding == "embedding":
            out = {self.names[i]: codes[:, i] for i in range(len(self.categorical))}
            if len(self.continuous):
                out["dense"] = dense
            return out
        if encoding != "onehot":
            raise ValueError(f"encoding must be 'onehot' or 'embedding', got {encoding!r}")
        blocks = [
            torch.nn.functional.one_hot(codes[:, i], len(v) + 1).float()
            for i, v in enumerate(self.vocab)
        ]
        return torch.cat([*blocks, dense], dim=1)

    def schema(self, embed_dim: int = 8) -> dict[str, list[dict[str, Any]]]:
        """The :class:`~polytask.models.FeatureSchema` configuration of the ``embedding``
        encoding (vocabularies include the unseen code 0)."""
        config: dict[str, list[dict[str, Any]]] = {
            "sparse": [
                {"name": self.names[i], "vocab_size": len(v) + 1, "embed_dim": embed_dim}
                for i, v in enumerate(self.vocab)
            ]
        }
        if len(self.continuous):
            config["dense"] = [{"name": "dense", "dim": len(self.continuous)}]
        return config


def input_spec(
    encoder: TabularEncoder, encoding: Encoding, embed_dim: int
) -> tuple[InputSpec, dict[str, Any] | None]:
    """What :meth:`TabularEncoder.transform` makes of a row with ``encoding``, and the
    feature schema of the ``embedding`` encoding (``None`` for ``onehot``)."""
    if encoding == "embedding":
        schema = encoder.schema(embed_dim)
        return InputSpec((), feature_schema=schema), schema
    return InputSpec((encoder.onehot_width(),)), None


def tabular_splits(
    name: str,
    parts: Mapping[str, Sequence[Sequence[str]]],
    targets: Mapping[str, Callable[..., float]],
    categorical: Sequence[int],
    continuous: Sequence[int],
    columns: Sequence[str],
    encoding: Encoding,
    embed_dim: int,
    metadata: dict[str, Any],
) -> DataSplits:
    """Binary tasks over parsed rows: the encoder is fitted on ``parts["train"]`` only.

    Args:
        parts: ``{"train": rows, "val": rows, "test": rows}``.
        targets: ``{task: row -> 0/1 label}``.
        categorical, continuous: feature column indices (targets excluded by the caller).
        columns: names of all columns.
    """
    encoder = TabularEncoder.fit(parts["train"], categorical, continuous, columns)
    datasets = {}
    for split, rows in parts.items():
        labels = {
            task: torch.tensor([label(r) for r in rows], dtype=torch.float32)
            for task, label in targets.items()
        }
        datasets[split] = TensorTaskDataset(
            encoder.transform(rows, encoding), labels, name=f"{name}/{split}"
        )
    tasks = [Task(t, "bce", metrics=("auc",)) for t in targets]
    meta = dict(metadata)
    meta.update(
        {
            "dataset": name,
            "sizes": {k: len(v) for k, v in datasets.items()},
            "features": {
                "categorical": [columns[c] for c in categorical],
                "continuous": [columns[c] for c in continuous],
            },
            "encoding": encoding,
            "positive_rate": {t: float(datasets["train"].targets[t].mean()) for t in targets},
        }
    )
    spec, schema = input_spec(encoder, encoding, embed_dim)
    if schema is not None:
        meta["feature_schema"] = schema
    return DataSplits(
        datasets["train"], datasets["val"], datasets["test"], tasks, spec.shape, meta, spec
    )
