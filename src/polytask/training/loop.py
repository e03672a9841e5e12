"""The epoch loop of :meth:`~polytask.training.Trainer.fit`: steps, logging, checkpoints,
validation, selection, callbacks and stopping (on patience, ``max_steps``, a callback's
signal, Ctrl-C or ``SIGTERM``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from polytask.data.batching import Batches
from polytask.data.dataset import TensorTaskDataset
from polytask.training.callbacks import Callback, as_callbacks
from polytask.training.interrupts import TrainingInterrupted
from polytask.training.trainer_config import StopTrainingSignal

if TYPE_CHECKING:
    from polytask.training.trainer import Trainer


def run_epochs(
    trainer: Trainer, batcher: Batches, val: TensorTaskDataset | Iterable[Any] | None
) -> bool:
    """Train ``trainer`` for the rest of its epochs: each epoch's steps, then validation,
    selection, callbacks, the log and a checkpoint. ``True`` when patience ended it."""
    cfg = trainer.config
    callbacks = as_callbacks(trainer.callbacks)
    with trainer.stop_request.listening():
        while batcher.epoch < cfg.epochs:
            if cfg.max_steps is not None and trainer.step >= cfg.max_steps:
                break
            epoch = batcher.epoch + 1
            if not run_epoch(trainer, batcher, epoch, callbacks):
                break
            trainer.balancer.epoch_end()
            record: dict[str, Any] = {"epoch": epoch, "step": trainer.step}
            if val is not None:
                evaluation = trainer.evaluate(val)
                score = trainer.score(evaluation)
                record.update(val=evaluation, monitor={cfg.monitor: score})
                trainer.balancer.observe_metrics(evaluation["metrics"])
                trainer.selection.update(score, epoch, trainer.model)
                for callback in callbacks:
                    callback.on_validation_end(trainer, evaluation)
            trainer.history.append(record)
            trainer.log("epoch", **record)
            for callback in callbacks:
                callback.on_epoch_end(trainer, record)
            trainer.save_checkpoint(batcher)
            if trainer.selection.should_stop:
                trainer.log("early_stop", epoch=epoch, best_epoch=trainer.selection.best_epoch)
                return True
    return False


def run_epoch(
    trainer: Trainer, batcher: Batches, epoch: int, callbacks: Sequence[Callback]
) -> bool:
    """Train the rest of the current epoch (steps, the train log every ``log_every`` steps,
    checkpoints, step callbacks, signals, ``max_steps``); ``False`` if stopped before its
    end."""
    cfg = trainer.config
    running = torch.zeros(len(trainer.tasks), device=trainer.device, dtype=torch.float64)
    count = 0
    bar = tqdm(
        total=len(batcher) or None, initial=batcher.position,
        desc=f"epoch {epoch}/{cfg.epochs}", disable=not cfg.progress, leave=False,
        dynamic_ncols=True, file=sys.stderr,
    )  # fmt: skip
    started = time.perf_counter()
    try:
        for batch in batcher:
            losses = trainer.train_step(batch)
            bar.update(1)
            if losses is not None:
                running += losses.double()
                count += 1
            if trainer.step % cfg.log_every == 0 and count:
                values = log_window(trainer, epoch, running, count)
                bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
                running.zero_()
                count = 0
            if cfg.checkpoint_every and trainer.step % cfg.checkpoint_every == 0:
                trainer.save_checkpoint(batcher)
            try:
                for callback in callbacks:
                    callback.on_step_end(trainer, trainer.step)
            except StopTrainingSignal:
                trainer.save_checkpoint(batcher)
                return False
            if trainer.stop_request.signum is not None:
                path = trainer.save_checkpoint(batcher)
                raise TrainingInterrupted(trainer.stop_request.signum, str(path) if path else None)
            if cfg.max_steps is not None and trainer.step >= cfg.max_steps:
                trainer.save_checkpoint(batcher)
                return False
    finally:
        bar.close()
    if count:  # the epoch's last, shorter window: a short run still has a training curve
        log_window(trainer, epoch, running, count)
    trainer.log("epoch_time", epoch=epoch, seconds=time.perf_counter() - started)
    return True


def log_window(trainer: Trainer, epoch: int, running: Tensor, count: int) -> dict[str, float]:
    """Log the ``train`` record of the steps since the last one (mean loss per task over
    ``count`` steps, learning rates, the balancer's window summary); returns the losses."""
    values = dict(zip(trainer.tasks.names, (running / count).tolist(), strict=True))
    lr = [group["lr"] for group in trainer.optimizer.param_groups]
    summary = trainer.window.summary(trainer.tasks.names)
    trainer.log("train", epoch=epoch, step=trainer.step, loss=values, lr=lr, **summary)
    return values
