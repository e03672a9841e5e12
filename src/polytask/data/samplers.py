"""Task samplers: which task (dataset) each batch comes from, when tasks have their own data.

A :class:`GroupBatcher` holds one dataset whose rows are grouped by source (one group per
task's dataset; see :func:`polytask.data.mixture.combine`). Each epoch a sampler lays out the
sequence of groups the batches come from; the ``k``-th batch of group ``g`` in an epoch takes
slice ``k mod b`` of a permutation of ``g`` seeded by the epoch and ``k div b`` (``b`` = the
group's batch count), so an exhaustive sampler visits every row once per epoch. With
``mixed=True`` every batch holds rows of every group, in the sampler's proportions, taken
from an endless sequence of seeded permutations per group, so that gradient balancers see
every task at every step. Everything is recomputed from
``(seed, epoch, position)``, so :meth:`GroupBatcher.state_dict` is three integers and a
resumed run continues with exactly the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from polytask._registry import Registry
from polytask.data.batching import SeededPosition
from polytask.data.dataset import Batch, TensorTaskDataset


class TaskSampler:
    """Base class: :meth:`probabilities` per epoch and :meth:`schedule` of one epoch.

    Subclasses set :meth:`probabilities` (or override :meth:`schedule` for exhaustive or
    cyclic orders). ``sizes`` are the groups' row counts, ``batches`` their batch counts.
    """

    def probabilities(self, sizes: Mapping[str, int], epoch: int) -> dict[str, float]:
        """Probability of drawing each group (summing to one)."""
        raise NotImplementedError

    def epoch_batches(self, batches: Mapping[str, int]) -> int:
        """Batches in one epoch (default: as many as the groups hold together)."""
        return sum(batches.values())

    def schedule(
        self,
        sizes: Mapping[str, int],
        batches: Mapping[str, int],
        epoch: int,
        generator: torch.Generator,
    ) -> list[str]:
        """The group of every batch of ``epoch`` (default: i.i.d. draws from
        :meth:`probabilities`)."""
        p = self.probabilities(sizes, epoch)
        names = list(p)
        weights = torch.tensor([p[n] for n in names], dtype=torch.float64)
        draws = torch.multinomial(
            weights, self.epoch_batches(batches), replacement=True, generator=generator
        )
        return [names[i] for i in draws.tolist()]


SAMPLERS: Registry[TaskSampler] = Registry("sampler")


@SAMPLERS.register("proportional")
class Proportional(TaskSampler):
    """Proportional to dataset size and exhaustive: every group's batches once per epoch, in
    a random order (the MT-DNN schedule, Liu et al. 2019, algorithm 1)."""

    def probabilities(self, sizes: Mapping[str, int], epoch: int) -> dict[str, float]:
        total = sum(sizes.values())
        return {g: n / total for g, n in sizes.items()}

    def schedule(
        self,
        sizes: Mapping[str, int],
        batches: Mapping[str, int],
        epoch: int,
        generator: torch.Generator,
    ) -> list[str]:
        order = [g for g, b in batches.items() for _ in range(b)]
        perm = torch.randperm(len(order), generator=generator).tolist()
        return [order[i] for i in perm]


@SAMPLERS.register("temperature")
class Temperature(TaskSampler):
    """``p_t ~ n_t^(1/tau)`` (tau = 1: proportional; large tau: uniform), i.i.d. per batch.

    Args:
        tau: temperature (2.0).
    """

    def __init__(self, tau: float = 2.0) -> None:
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.tau = float(tau)

    def tau_at(self, epoch: int) -> float:
        """The temperature of ``epoch``."""
        return self.tau

    def probabilities(self, sizes: Mapping[str, int], epoch: int) -> dict[str, float]:
        tau = self.tau_at(epoch)
        raw = {g: n ** (1.0 / tau) for g, n in sizes.items()}
        total = sum(raw.values())
        return {g: r / total for g, r in raw.items()}


@SAMPLERS.register("annealed_temperature")
class AnnealedTemperature(Temperature):
    """Temperature moving linearly from ``tau_start`` (epoch 1) to ``tau_end`` (epoch
    ``epochs`` and after). Stickland & Murray (ICML 2019) anneal the exponent
    ``alpha = 1/tau`` linearly from 1 to 0.2 instead; the endpoints ``tau_start=1``,
    ``tau_end=5`` are theirs, the path between differs.

    Args:
        tau_start: first temperature (1.0: proportional).
        tau_end: last temperature (5.0: close to uniform).
        epochs: epochs over which tau moves (10).
    """

    def __init__(self, tau_start: float = 1.0, tau_end: float = 5.0, epochs: int = 10) -> None:
        super().__init__(tau_start)
        if not tau_end > 0 or epochs < 1:
            raise ValueError("need tau_end > 0 and epochs >= 1")
        self.tau_end, self.epochs = float(tau_end), int(epochs)

    def tau_at(self, epoch: int) -> float:
        if self.epochs == 1:
            return self.tau_end
        frac = min(max(epoch - 1, 0), self.epochs - 1) / (self.epochs - 1)
        return self.tau + frac * (self.tau_end - self.tau)


@SAMPLERS.register("round_robin")
class RoundRobin(TaskSampler):
    """Groups in turn, one batch each, for as many rounds as the largest group has batches
    (smaller groups start a new permutation when used up)."""

    def probabilities(self, sizes: Mapping[str, int], epoch: int) -> dict[str, float]:
        return {g: 1.0 / len(sizes) for g in sizes}

    def schedule(
        self,
        sizes: Mapping[str, int],
        batches: Mapping[str, int],
        epoch: int,
        generator: torch.Generator,
    ) -> list[str]:
        return [g for _ in range(max(batches.values())) for g in batches]


@SAMPLERS.register("fixed_ratio")
class FixedRatio(TaskSampler):
    """Fixed probabilities ``ratios`` (normalised), i.i.d. per batch.

    Args:
        ratios: ``{group: weight}``; every group must be named.
    """

    def __init__(self, ratios: Mapping[str, float]) -> None:
        if not ratios or any(not r >= 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
            raise ValueError(f"ratios must be non-negative with a positive sum, got {dict(ratios)}")
        self.ratios = dict(ratios)

    def probabilities(self, sizes: Mapping[str, int], epoch: int) -> dict[str, float]:
        unknown = set(self.ratios) ^ set(sizes)
        if unknown:
            raise KeyError(
                f"fixed_ratio must name exactly the groups {sorted(sizes)}; "
                f"mismatch {sorted(unknown)}"
            )
        total = sum(self.ratios.values())
        return {g: self.ratios[g] / total for g in sizes}


@SAMPLERS.register("main_ratio")
class MainRatio(TaskSampler):
    """The main group exhaustively once per epoch; the auxiliary groups sub-sampled to
    ``ratio`` times as many batches, shared in proportion to their sizes, all shuffled
    together (MT-DNN's ``--ratio`` for a main task with auxiliary data).

    Args:
        main: the main group.
        ratio: auxiliary batches per main batch (1.0).
    """

    def __init__(self, main: str, ratio: float = 1.0) -> None:
        if not ratio >= 0:
            raise ValueError(f"ratio must be >= 0, got {ratio}")
        self.main, self.ratio = main, float(ratio)

    def probabilities(self, sizes: Mapping[str, int], epoch: int) -> dict[str, float]:
        aux = {g: n for g, n in sizes.items() if g != self.main}
        total = sum(aux.values())
        return {g: n / total for g, n in aux.items()}

    def schedule(
        self,
        sizes: Mapping[str, int],
        batches: Mapping[str, int],
        epoch: int,
        generator: torch.Generator,
    ) -> list[str]:
        if self.main not in batches:
            raise KeyError(f"main group {self.main!r} not among {sorted(batches)}")
        order = [self.main] * batches[self.main]
        n_aux = round(self.ratio * batches[self.main])
        if n_aux and len(batches) > 1:
            p = self.probabilities(sizes, epoch)
            names = list(p)
            weights = torch.tensor([p[n] for n in names], dtype=torch.float64)
            draws = torch.multinomial(weights, n_aux, replacement=True, generator=generator)
            order += [names[i] for i in draws.tolist()]
        perm = torch.randperm(len(order), generator=generator).tolist()
        return [order[i] for i in perm]


def create_sampler(name: str, **options: Any) -> TaskSampler:
    """A sampler by registered name (``polytask list`` shows them via the registry)."""
    return SAMPLERS.create(name, **options)


class GroupBatcher(SeededPosition):
    """Batches of a dataset whose rows are grouped (one group per source dataset), laid out
    by a :class:`TaskSampler`; the same interface as
    :class:`~polytask.data.batching.IndexBatcher` (``epoch``, ``position``, ``len``,
    iteration, ``state_dict``).

    Args:
        dataset: all rows (other groups' labels missing, as :func:`combine` makes them).
        groups: ``{group: 1-D index tensor of its rows}``.
        sampler: the task sampler.
        batch_size: rows per batch.
        seed: base seed of schedules and permutations.
        mixed: every batch holds rows of every group (``round(p_g * batch_size)``, at least
            one each) instead of one group's rows.
    """

    def __init__(
        self,
        dataset: TensorTaskDataset,
        groups: Mapping[str, Tensor],
        sampler: TaskSampler,
        batch_size: int,
        *,
        seed: int = 0,
        mixed: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not groups or any(len(g) == 0 for g in groups.values()):
            raise ValueError("every group needs at least one row")
        self.dataset, self.sampler = dataset, sampler
        self.groups = {g: idx.to(torch.long) for g, idx in groups.items()}
        self.batch_size, self.seed, self.mixed = batch_size, seed, mixed
        self.sizes = {g: len(idx) for g, idx in self.groups.items()}
        self.batches = {g: math.ceil(n / batch_size) for g, n in self.sizes.items()}
        self.epoch = 0
        self.position = 0

    def _generator(self, *salt: int) -> torch.Generator:
        value = self.seed
        for s in salt:
            value = value * 1_000_003 + s
        return torch.Generator().manual_seed(value % (2**63))

    def plan(self, epoch: int) -> list[str]:
        """The group of every batch of ``epoch`` (for mixed batches: the step count only)."""
        return self.sampler.schedule(self.sizes, self.batches, epoch, self._generator(epoch, 1))

    def __len__(self) -> int:
        return len(self.plan(self.epoch))

    def _batch(self, group: str, epoch: int, k: int) -> Tensor:
        """The ``k``-th batch of ``group`` in ``epoch``: slice ``k mod b`` of the group's
        permutation for ``(epoch, k div b)`` (``b`` = the group's batches), so a group drawn
        ``b`` times in an epoch visits each of its rows exactly once."""
        idx = self.groups[group]
        cycle, slot = divmod(k, self.batches[group])
        gi = list(self.groups).index(group)
        perm = torch.randperm(len(idx), generator=self._generator(gi, epoch, cycle, 2))
        return idx[perm[slot * self.batch_size : (slot + 1) * self.batch_size]]

    def _stream(self, group: str, start: int, count: int) -> Tensor:
        """Rows ``start .. start + count`` of the endless sequence of ``group``'s
        permutations (mixed batches; a new seeded permutation for every pass)."""
        idx = self.groups[group]
        n, out = len(idx), []
        gi = list(self.groups).index(group)
        while count > 0:
            cycle, offset = divmod(start, n)
            perm = torch.randperm(n, generator=self._generator(gi, cycle, 3))
            take = min(count, n - offset)
            out.append(idx[perm[offset : offset + take]])
            start, count = start + take, count - take
        return torch.cat(out)

    def _mixed_sizes(self, epoch: int) -> dict[str, int]:
        p = self.sampler.probabilities(self.sizes, epoch)
        return {g: max(1, round(p.get(g, 0.0) * self.batch_size)) for g in self.groups}

    def __iter__(self) -> Iterator[Batch]:
        plan = self.plan(self.epoch)
        if self.mixed:
            # Rows of each group consumed by every earlier step (all epochs).
            used = dict.fromkeys(self.groups, 0)
            for e in range(self.epoch + 1):
                steps = len(self.plan(e)) if e < self.epoch else self.position
                for g, k in self._mixed_sizes(e).items():
                    used[g] += k * steps
        else:
            seen = dict.fromkeys(self.groups, 0)
            for g in plan[: self.position]:
                seen[g] += 1
        while self.position < len(plan):
            if self.mixed:
                parts = []
                for g, k in self._mixed_sizes(self.epoch).items():
                    parts.append(self._stream(g, used[g], k))
                    used[g] += k
                index = torch.cat(parts)
            else:
                g = plan[self.position]
                index = self._batch(g, self.epoch, seen[g])
                seen[g] += 1
            self.position += 1
            yield self.dataset.take(index)
        self.epoch += 1
        self.position = 0
