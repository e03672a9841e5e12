"""What the engine asks of data parallelism: the reductions that make a step on several
ranks equal the step on the whole batch.

The engine does not import ``torch.distributed`` machinery of its own beyond the world
size: :mod:`polytask.distributed` installs a :class:`RankReduction` (``enable()`` /
``init()``), and :func:`polytask.backward` calls it at three points of a step:

1. :meth:`RankReduction.prepare`, before anything else: the global label counts and
   presence, and each rank's losses rescaled so that every later quantity is a plain mean
   over ranks;
2. :meth:`RankReduction.weights_inputs`, before the balancer runs: the global Gramian and
   loss vector;
3. :meth:`RankReduction.same_weights`, after it ran: one rank's weights on every rank (a
   method that draws random numbers draws them once);

and, at the parameter level, :meth:`RankReduction.mean_blocks`: the whole batch's Jacobian
of the shared parameters (the mean of the ranks' Jacobians of the rescaled losses); for a
Jacobian method at the representation level, :meth:`RankReduction.gather_rows`: every
rank's per-sample rows.

Gradients are then each rank's own, and averaging them over ranks (DDP does it; without
DDP, :func:`polytask.distributed.average_gradients`) gives the whole batch's step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from torch import Tensor

from polytask.gradients.losses import LossList


class RankReduction(Protocol):
    """The reductions of one data-parallel step (see the module docstring)."""

    def prepare(self, items: LossList) -> LossList:
        """The step's losses with global presence and rank-mean-able values."""
        ...

    def weights_inputs(
        self, gramian: Tensor | None, losses: Tensor
    ) -> tuple[Tensor | None, Tensor]:
        """The global Gramian (or ``None``) and loss vector from this rank's."""
        ...

    def same_weights(self, weights: Tensor) -> Tensor:
        """The weights every rank uses (rank 0's)."""
        ...

    def mean_blocks(self, blocks: list[Tensor]) -> list[Tensor]:
        """The whole batch's Jacobian blocks (each ``(T, ...)``): their mean over ranks."""
        ...

    @property
    def world(self) -> int:
        """The number of ranks."""
        ...

    def gather_rows(self, rows: Tensor) -> tuple[Tensor, slice]:
        """The whole batch's per-sample feature Jacobian ``(T, B, ...)`` from this rank's
        ``(T, b, ...)`` (every rank's rows in rank order, scaled to the whole batch's
        losses), and the slice of ``B`` that is this rank's."""
        ...


_installed: list[RankReduction] = []


def install(reduction: RankReduction | None) -> None:
    """Make ``reduction`` the one the engine uses (``None``: none)."""
    _installed.clear()
    if reduction is not None:
        _installed.append(reduction)


def installed() -> RankReduction | None:
    """The installed reduction, or ``None``."""
    return _installed[0] if _installed else None


_active: list[RankReduction | None] = [None]


@contextmanager
def stepping(reduction: RankReduction | None) -> Iterator[None]:
    """Make ``reduction`` the active one for one :func:`polytask.backward` step."""
    previous = _active[0]
    _active[0] = reduction
    try:
        yield
    finally:
        _active[0] = previous


def active() -> RankReduction | None:
    """The reduction of the step under way (``None``: one process, or none needed)."""
    return _active[0]
