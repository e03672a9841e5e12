"""Training length sized by the data when the configuration leaves it out.

A fixed 10 epochs of 256 rows is a sensible default for tens of thousands of rows and a
silent failure for a small table (200 rows: 10 optimizer steps). When ``schedule.epochs`` or
``schedule.batch_size`` is not given, :func:`sized_schedule` chooses them from the number of
training rows:

- batch size: the power of two nearest below ``rows / 10`` (about ten batches an epoch),
  within ``[32, 256]``;
- epochs: at least 10, and enough for :data:`MIN_STEPS` optimizer steps (with
  ``max_steps`` given: enough to reach it).

Data sets of 38,400 rows or more keep 10 epochs of 256. The choice is reported (the
command line prints it; ``results.json`` records it).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

MIN_STEPS = 1500
"""Optimizer steps a run gets at least when its length is sized by the data (a small MLP
with Adam at the default learning rate converges on a few-hundred-row table within it; see
``benchmarks/small_tables.py``)."""

MIN_EPOCHS, MIN_BATCH, MAX_BATCH = 10, 32, 256

FEW_STEPS = 100
"""A run planned with fewer optimizer steps is warned about (:func:`warn_if_few_steps`)."""


@dataclass(frozen=True)
class SizedSchedule:
    """Epochs and batch size for a run, and a one-line note on what was chosen (``""``
    when both were given)."""

    epochs: int
    batch_size: int
    note: str


def sized_schedule(
    rows: int, epochs: int | None, batch_size: int | None, max_steps: int | None
) -> SizedSchedule:
    """The run's epochs and batch size: the given ones, or sized by ``rows`` (the training
    rows) as the module says."""
    chosen = []
    if batch_size is None:
        batch_size = min(MAX_BATCH, max(MIN_BATCH, 2 ** int(math.log2(max(rows / 10, 1)))))
        chosen.append(f"batch_size {batch_size}")
    steps_per_epoch = math.ceil(rows / batch_size)
    if epochs is None:
        target = max_steps if max_steps is not None else MIN_STEPS
        epochs = max(MIN_EPOCHS if max_steps is None else 1, math.ceil(target / steps_per_epoch))
        chosen.append(f"epochs {epochs}")
    if not chosen:
        return SizedSchedule(epochs, batch_size, "")
    steps = (
        epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    )
    note = (
        f"schedule sized for {rows} training rows: {' and '.join(chosen)} ({steps} optimizer "
        "steps); set schedule.epochs and schedule.batch_size to choose them"
    )
    return SizedSchedule(epochs, batch_size, note)


def warn_if_few_steps(rows: int, steps: int) -> None:
    """Warn when a run of ``steps`` optimizer steps over ``rows`` training rows is too short
    to train (fewer than :data:`FEW_STEPS`), with the schedule :func:`sized_schedule` would
    choose."""
    if steps >= FEW_STEPS:
        return
    sized = sized_schedule(rows, None, None, None)
    warnings.warn(
        f"only {steps} optimizer steps for {rows} training rows: the model will barely "
        f"train. Set epochs or max_steps (sized_schedule suggests epochs={sized.epochs}, "
        f"batch_size={sized.batch_size})",
        UserWarning,
        stacklevel=3,
    )
