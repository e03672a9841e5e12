"""Train/validation/test splits and the description of a loaded dataset."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polytask.data.dataset import TensorTaskDataset
from polytask.tasks.task import Task

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class InputSpec:
    """What one input row is: the typed contract between a dataset and the model built for
    it (:func:`~polytask.training.experiment_build.model_options` reads it).

    Attributes:
        shape: shape of one row without the batch axis (``()`` for named inputs).
        vocab_size: token ids lie in ``[0, vocab_size)`` (text); ``None`` otherwise.
        feature_schema: named recommendation features, the configuration of a
            :class:`~polytask.models.FeatureSchema` (``{"sparse": [...], "dense": [...]}``);
            ``None`` otherwise.
    """

    shape: tuple[int, ...]
    vocab_size: int | None = None
    feature_schema: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """``tokens``, ``features`` (named) or ``tensor``."""
        if self.vocab_size is not None:
            return "tokens"
        return "features" if self.feature_schema is not None else "tensor"


@dataclass
class DataSplits:
    """A loaded multi-task dataset.

    Attributes:
        train, val, test: the splits (``val`` is used for model selection, ``test`` once).
        tasks: the tasks the dataset defines (loss, metrics, classes).
        input_shape: shape of one input row (without the batch axis).
        metadata: provenance: source files, split rule, seeds, warnings.
        input: what an input row is (:class:`InputSpec`); a plain tensor of ``input_shape``
            unless the loader says otherwise.
    """

    train: TensorTaskDataset
    val: TensorTaskDataset
    test: TensorTaskDataset
    tasks: list[Task]
    input_shape: tuple[int, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    input: InputSpec | None = None

    def __post_init__(self) -> None:
        if self.input is None:
            self.input = InputSpec(tuple(self.input_shape))

    @property
    def spec(self) -> InputSpec:
        """:attr:`input`, never ``None``."""
        assert self.input is not None
        return self.input

    def split(self, name: str) -> TensorTaskDataset:
        """The split called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        dataset: TensorTaskDataset = getattr(self, name)
        return dataset


def random_partition(n: int, sizes: list[int], seed: int) -> list[Tensor]:
    """Disjoint random index sets of the given sizes from ``range(n)`` (seeded)."""
    if sum(sizes) > n:
        raise ValueError(f"cannot take {sum(sizes)} rows out of {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for size in sizes:
        parts.append(order[start : start + size])
        start += size
    return parts


def fraction_partition(n: int, fractions: Sequence[float], seed: int) -> list[Tensor]:
    """A seeded random partition of ``range(n)`` into parts of the given fractions (the last
    part takes the rounding remainder)."""
    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be positive and sum to 1, got {list(fractions)}")
    sizes = [round(n * f) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    if min(sizes) < 1:
        raise ValueError(f"{n} rows cannot be split into {list(fractions)}")
    return random_partition(n, sizes, seed)


def standardize(train: Tensor, *others: Tensor) -> list[Tensor]:
    """Columns standardised with the training rows' mean and standard deviation (constant
    columns are left centred, not divided)."""
    mean = train.mean(0)
    std = train.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [(x - mean) / std for x in (train, *others)]


def per_task_splits(
    name: str,
    inputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    task_names: Sequence[str],
    fractions: Sequence[float],
    seed: int,
    metadata: dict[str, Any],
    standardize_columns: Sequence[int] = (),
    ordered: bool = False,
) -> DataSplits:
    """Classic per-task data ``{(x_ti, y_ti)}`` (setting 4) as one dataset with missing
    labels: row ``i`` of task ``t`` has ``y_ti`` as task ``t``'s target and NaN (missing) for
    every other task, so every loss, metric and balancer applies unchanged. Each task's rows
    are split by ``fractions`` (train, val, test), at random with ``seed`` + task index, or
    in row order when ``ordered``. ``standardize_columns`` are standardised with training
    statistics.
    """
    parts: dict[str, tuple[list[Tensor], list[Tensor], list[int]]] = {
        s: ([], [], []) for s in ("train", "val", "test")
    }
    for t, (x, y) in enumerate(zip(inputs, targets, strict=True)):
        if ordered:
            sizes = [round(len(x) * f) for f in fractions[:-1]]
            bounds = [0, sizes[0], sizes[0] + sizes[1], len(x)]
            chunks = [torch.arange(a, b) for a, b in itertools.pairwise(bounds)]
        else:
            chunks = fraction_partition(len(x), fractions, seed + t)
        for split, idx in zip(parts, chunks, strict=True):
            parts[split][0].append(x[idx])
            parts[split][1].append(y[idx].reshape(-1).float())
            parts[split][2].extend([t] * len(idx))
    built = {}
    for split, (xs, ys, owner) in parts.items():
        x = torch.cat(xs).float()
        y = torch.cat(ys)
        owners = torch.tensor(owner)
        labels = {
            task: torch.where(owners == t, y, torch.full_like(y, float("nan")))
            for t, task in enumerate(task_names)
        }
        built[split] = (x, labels, owners)
    if standardize_columns:
        cols = list(standardize_columns)
        scaled = standardize(*(built[s][0][:, cols] for s in built))
        for (x, _, _), z in zip(built.values(), scaled, strict=True):
            x[:, cols] = z
    datasets = {
        s: TensorTaskDataset(x, labels, name=f"{name}/{s}") for s, (x, labels, _) in built.items()
    }
    tasks = [Task(task, "mse", metrics=("mse",)) for task in task_names]
    meta = {
        "dataset": name,
        "setting": "per-task data (setting 4): each row labels one task, NaN elsewhere",
        "sizes": {s: len(d) for s, d in datasets.items()},
        "seed": seed,
        **metadata,
    }
    return DataSplits(
        datasets["train"],
        datasets["val"],
        datasets["test"],
        tasks,
        tuple(built["train"][0].shape[1:]),
        meta,
    )


def matrix_splits(
    name: str,
    inputs: Tensor,
    targets: dict[str, Tensor],
    tasks: Sequence[Task],
    fractions: Sequence[float] | None,
    seed: int,
    metadata: dict[str, Any],
    given: dict[str, Tensor] | None = None,
    standardize_targets: bool = False,
) -> DataSplits:
    """Setting 1 (one input, every task labelled) from one matrix of inputs: rows split by
    ``fractions`` with ``seed`` (or by ``given`` index tensors ``{"train", "val", "test"}``),
    inputs standardised with training statistics; with ``standardize_targets``, regression
    targets too (training mean and deviation, recorded in ``metadata["target_scale"]``)."""
    if given is None:
        assert fractions is not None
        given = dict(zip(SPLITS, fraction_partition(len(inputs), fractions, seed), strict=True))
    xs = standardize(*(inputs[given[s]].float() for s in SPLITS))
    ys: dict[str, list[Tensor]] = {}
    scale: dict[str, tuple[float, float]] = {}
    for task, y in targets.items():
        parts = [y[given[s]] for s in SPLITS]
        if standardize_targets and y.is_floating_point():
            mean, std = float(parts[0].mean()), float(parts[0].std(unbiased=False))
            parts = [(p - mean) / std for p in parts]
            scale[task] = (mean, std)
        ys[task] = parts
    datasets = [
        TensorTaskDataset(xs[i], {t: ys[t][i] for t in targets}, name=f"{name}/{s}")
        for i, s in enumerate(SPLITS)
    ]
    meta = {
        "dataset": name,
        "sizes": {s: len(d) for s, d in zip(SPLITS, datasets, strict=True)},
        "seed": seed,
        **metadata,
    }
    if scale:
        meta["target_scale"] = scale
    train, val, test = datasets
    return DataSplits(train, val, test, list(tasks), tuple(inputs.shape[1:]), meta)
