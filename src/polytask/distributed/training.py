"""polytask's :class:`~polytask.training.Trainer` on several processes: every rank reads the
same global batches (the same seeded order), trains on its slice of each, and the
gradients are averaged, so ``W`` processes with global batch ``B`` follow the steps of one
process with batch ``B`` (exact for the methods :mod:`polytask.distributed` covers; the
engine refuses the others). Rank 0 logs and writes the run folder; every rank resumes from
its checkpoint."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from polytask.data.dataset import Batch
from polytask.distributed import average_gradients, broadcast_parameters, world_size
from polytask.gradients.backward import BackwardResult
from polytask.tasks.taskset import TaskLosses
from polytask.training.logger import JsonlLogger
from polytask.training.step import GradientStep
from polytask.training.trainer import Trainer


class BatchNormError(ValueError):
    """A model with per-process batch statistics, trained on several ranks."""


class ShardedStep(GradientStep):
    """:class:`~polytask.training.step.GradientStep` on this rank's rows of the global
    batch (rows ``r B / W`` to ``(r + 1) B / W``), then the gradients of the model and of
    the balancer's learnt parameters averaged over ranks."""

    def __init__(self, owner: Any, rank: int, world: int) -> None:
        super().__init__(owner)
        self.rank, self.world = rank, world

    def __call__(self, batch: Batch) -> tuple[TaskLosses, BackwardResult]:
        rows = len(batch)
        mine = batch.slice(self.rank * rows // self.world, (self.rank + 1) * rows // self.world)
        losses, result = super().__call__(mine)
        if not result.skipped:  # skipped on every rank alike (the engine reduces the flag)
            # The balancer's learnt parameters (uncertainty weighting's log variances, ...)
            # are trained from each rank's losses too.
            average_gradients([*self.owner.model.parameters(), *self.owner.balancer.parameters()])
        return losses, result


def check_batch_norm(model: nn.Module) -> None:
    """Raise :class:`BatchNormError` if ``model`` has BatchNorm layers that are not
    ``SyncBatchNorm``: each rank would normalise by its own slice's statistics, a different
    model from one process on the whole batch."""
    found = [name for name, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and not isinstance(m, nn.SyncBatchNorm)]  # fmt: skip
    if found:
        raise BatchNormError(
            f"the model has BatchNorm layers ({', '.join(found[:3])}) whose batch statistics "
            "would be each rank's own: convert them with "
            "torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) for the whole batch's"
        )


def data_parallel(trainer: Trainer) -> Trainer:
    """Make ``trainer`` train data-parallel on the default process group's ranks (after
    :func:`polytask.distributed.init`): its steps take this rank's slice of every global
    batch and average the gradients; rank 0's initial weights go to every rank; ranks
    other than 0 log nothing, show no progress bar and write nothing in the run folder.
    Returns ``trainer``.

    Raises:
        BatchNormError: the model normalises by per-rank batch statistics.
    """
    W = world_size()
    if W <= 1:
        return trainer
    check_batch_norm(trainer.model)
    rank = torch.distributed.get_rank()
    trainer.gradient_step = ShardedStep(trainer, rank, W)
    broadcast_parameters(trainer.model)
    if rank != 0:
        trainer.writes = False
        trainer.logger = JsonlLogger(None)
        trainer.loggers = []
        trainer.config = dataclasses.replace(trainer.config, progress=False)
    return trainer
