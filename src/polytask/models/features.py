"""Recommendation inputs: a feature schema and the embedding layer it builds.

A schema lists sparse categorical features (one id per sample, embedded), variable-length
sequences of ids (embedded and pooled), and dense features (used as they are); features may
share an embedding table (``shared_with``), as user and item ids often do with their
histories. :class:`FeatureEmbedding` turns ``{feature name: tensor}`` into one vector per
sample, so any architecture can take it as its input layer (``polytask.models.create(name,
input_layer=schema, ...)``), as in torch-rechub or DeepCTR. All tables of one embedding width
are one ``nn.Embedding`` with per-feature offsets, so the sparse features of a batch are
looked up with one call per width.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

Pooling = Literal["mean", "sum", "max"]


@dataclass(frozen=True)
class SparseFeature:
    """A categorical feature: ids ``(B,)`` in ``[0, vocab_size)``, embedded in
    ``embed_dim``; ``shared_with`` names a feature whose table it uses instead of its own."""

    name: str
    vocab_size: int
    embed_dim: int = 8
    shared_with: str | None = None


@dataclass(frozen=True)
class SequenceFeature:
    """A variable-length sequence of ids ``(B, L)``, right-padded with negative ids, embedded
    and pooled over its real positions (``mean``, ``sum`` or ``max``; an empty sequence gives
    zeros)."""

    name: str
    vocab_size: int
    embed_dim: int = 8
    pooling: Pooling = "mean"
    shared_with: str | None = None


@dataclass(frozen=True)
class DenseFeature:
    """A real-valued feature ``(B,)`` or ``(B, dim)``, used as it is (standardise it when
    the data are prepared)."""

    name: str
    dim: int = 1


Feature = SparseFeature | SequenceFeature | DenseFeature
_KINDS: dict[str, type] = {
    "sparse": SparseFeature,
    "sequence": SequenceFeature,
    "dense": DenseFeature,
}


class FeatureSchema:
    """An ordered list of features, checked: unique names, positive sizes, ``shared_with``
    naming an embedded feature with its own table and the same ``embed_dim`` and a
    vocabulary at least as large.

    Build it from feature objects or from configuration (:meth:`from_config`)::

        schema = FeatureSchema.from_config({
            "sparse": [{"name": "user", "vocab_size": 1000}, {"name": "item", "vocab_size": 500}],
            "sequence": [{"name": "history", "vocab_size": 500, "shared_with": "item"}],
            "dense": [{"name": "age"}],
        })
    """

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features = list(features)
        names = [f.name for f in self.features]
        if not names:
            raise ValueError("a feature schema needs at least one feature")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique; repeated: {duplicates}")
        by_name = {f.name: f for f in self.features}
        for f in self.features:
            if isinstance(f, DenseFeature):
                if f.dim < 1:
                    raise ValueError(f"dense feature {f.name!r}: dim must be >= 1")
                continue
            if f.vocab_size < 1 or f.embed_dim < 1:
                raise ValueError(f"feature {f.name!r}: vocab_size and embed_dim must be >= 1")
            if isinstance(f, SequenceFeature) and f.pooling not in ("mean", "sum", "max"):
                raise ValueError(f"sequence {f.name!r}: pooling must be mean, sum or max")
            if f.shared_with is not None:
                owner = by_name.get(f.shared_with)
                if owner is None or isinstance(owner, DenseFeature) or owner.shared_with:
                    raise ValueError(
                        f"feature {f.name!r} shares the table of {f.shared_with!r}, which is "
                        "not an embedded feature with a table of its own"
                    )
                if owner.embed_dim != f.embed_dim or owner.vocab_size < f.vocab_size:
                    raise ValueError(
                        f"feature {f.name!r} cannot use {owner.name!r}'s table: embed_dim must "
                        "match and its vocabulary must be at least as large"
                    )

    @classmethod
    def from_config(cls, config: Mapping[str, Sequence[Mapping[str, Any]]]) -> FeatureSchema:
        """From ``{"sparse": [...], "sequence": [...], "dense": [...]}`` (lists of the
        features' fields), as written in YAML."""
        unknown = [k for k in config if k not in _KINDS]
        if unknown:
            raise KeyError(f"feature kinds must be {sorted(_KINDS)}, got {unknown}")
        features: list[Feature] = []
        for kind, entries in config.items():
            for entry in entries:
                try:
                    features.append(_KINDS[kind](**entry))
                except TypeError as error:
                    raise TypeError(f"{kind} feature {dict(entry)}: {error}") from error
        return cls(features)

    def __iter__(self) -> Any:
        return iter(self.features)

    def names(self) -> list[str]:
        """Feature names in order (the keys of the input dictionary)."""
        return [f.name for f in self.features]

    def output_dim(self) -> int:
        """Width of the embedded vector: the sum of embedding and dense widths."""
        return sum(f.dim if isinstance(f, DenseFeature) else f.embed_dim for f in self.features)


class FeatureEmbedding(nn.Module):
    """The input layer of a :class:`FeatureSchema`: ``{name: tensor}`` -> ``(B, output_dim)``,
    the concatenation of the sparse embeddings (schema order within each width, widths in
    order of first use), the pooled sequence embeddings and the dense features.

    Args:
        schema: the schema, or its configuration (see :meth:`FeatureSchema.from_config`).
    """

    def __init__(self, schema: FeatureSchema | Mapping[str, Any]) -> None:
        super().__init__()
        if not isinstance(schema, FeatureSchema):
            schema = FeatureSchema.from_config(schema)
        self.schema = schema
        self.output_dim = schema.output_dim()
        embedded = [f for f in schema if not isinstance(f, DenseFeature)]
        owners = [f for f in embedded if f.shared_with is None]
        widths = list(dict.fromkeys(f.embed_dim for f in owners))
        self.offset: dict[str, tuple[int, int]] = {}  # name -> (table index, offset)
        sizes = [0] * len(widths)
        for f in owners:
            table = widths.index(f.embed_dim)
            self.offset[f.name] = (table, sizes[table])
            sizes[table] += f.vocab_size
        for f in embedded:
            if f.shared_with is not None:
                self.offset[f.name] = self.offset[f.shared_with]
        embeddings = [nn.Embedding(n, d) for n, d in zip(sizes, widths, strict=True)]
        for embedding in embeddings:
            nn.init.normal_(embedding.weight, std=0.01)
        self.tables = nn.ModuleList(embeddings)
        self.sparse: list[list[str]] = [[] for _ in widths]
        for f in embedded:
            if isinstance(f, SparseFeature):
                self.sparse[self.offset[f.name][0]].append(f.name)
        for i, names in enumerate(self.sparse):
            offsets = torch.tensor([self.offset[n][1] for n in names], dtype=torch.long)
            self.register_buffer(f"offsets{i}", offsets, persistent=False)
        self.sequences = [f for f in embedded if isinstance(f, SequenceFeature)]
        self.dense = [f for f in schema if isinstance(f, DenseFeature)]

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        missing = [n for n in self.schema.names() if n not in inputs]
        if missing:
            raise KeyError(
                f"inputs lack feature(s) {missing}; the schema has {self.schema.names()}"
            )
        parts = []
        for i, names in enumerate(self.sparse):
            if names:
                ids = torch.stack([inputs[n].reshape(-1) for n in names], dim=1)
                offsets: Tensor = getattr(self, f"offsets{i}")
                parts.append(self._lookup(i, ids + offsets).flatten(1))
        for f in self.sequences:
            parts.append(self._pool(f, inputs[f.name]))
        for d in self.dense:
            x = inputs[d.name]
            parts.append(x.reshape(x.shape[0], -1).to(torch.get_default_dtype()))
        return torch.cat(parts, dim=1)

    def _lookup(self, table: int, ids: Tensor) -> Tensor:
        """Rows ``ids`` (any shape) of embedding table ``table``: ``(*ids.shape, width)``.

        The same values as ``nn.Embedding``, by ``index_select``, whose backward (an
        ``index_add``) is about twice as fast on CPU as the embedding's dense backward."""
        embedding = self.tables[table]
        assert isinstance(embedding, nn.Embedding)
        weight = embedding.weight
        return weight.index_select(0, ids.reshape(-1)).view(*ids.shape, weight.shape[1])

    def _pool(self, feature: SequenceFeature, ids: Tensor) -> Tensor:
        table, offset = self.offset[feature.name]
        mask = ids >= 0
        emb = self._lookup(table, ids.clamp_min(0) + offset)
        keep = mask.unsqueeze(-1).to(emb.dtype)
        if feature.pooling == "max":
            filled = emb.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
            return torch.where(mask.any(dim=1, keepdim=True), filled, torch.zeros_like(filled))
        total = (emb * keep).sum(dim=1)
        if feature.pooling == "sum":
            return total
        return total / keep.sum(dim=1).clamp_min(1.0)
