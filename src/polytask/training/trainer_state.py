"""A trainer's checkpoint: everything needed to continue exactly, and the settings that
define the run (compared on resume)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from polytask.data.batching import Batches
from polytask.training import checkpoint as ckpt
from polytask.training.run_folder import (
    MAY_CHANGE_ON_RESUME,
    RunMismatchError,
    fingerprint,
    log_sizes,
    mismatch_message,
    settings_differences,
    truncate_logs,
)

if TYPE_CHECKING:
    from polytask.training.trainer import Trainer

FORMAT = "polytask-checkpoint-1"


def run_settings(trainer: Trainer) -> dict[str, Any]:
    """The settings that define ``trainer``'s run, as they are now: its configuration (less
    :data:`~polytask.training.run_folder.MAY_CHANGE_ON_RESUME`), the model's class and
    architecture, the optimizer's and scheduler's hyper-parameters, the balancer's class and
    options, the tasks, and the caller's ``run_settings``."""
    scheduler = trainer.scheduler
    return {
        "trainer": {
            k: v for k, v in asdict(trainer.config).items() if k not in MAY_CHANGE_ON_RESUME
        },
        "model": {
            "class": type(trainer.model).__name__,
            "architecture": fingerprint({"repr": repr(trainer.model)}),
        },
        "optimizer": {
            "class": type(trainer.optimizer).__name__,
            "groups": [plain(g) for g in trainer.optimizer.param_groups],
        },
        "scheduler": None
        if scheduler is None
        else {"class": type(scheduler).__name__, **plain(scheduler.state_dict())},
        "balancer": {"class": type(trainer.balancer).__name__, **plain(vars(trainer.balancer))},
        "tasks": [
            {"name": t.name, "loss": t.loss, "role": t.role, "weight": t.weight}
            for t in trainer.tasks
        ],
        "run": trainer.run_settings,
    }


def check_settings(trainer: Trainer, state: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise :class:`~polytask.training.run_folder.RunMismatchError` if ``state`` (a
    checkpoint) was written under settings other than ``current``."""
    saved = state.get("trainer", {}).get("settings")
    if saved is None:
        warnings.warn(
            "the checkpoint records no settings (written by an older polytask); resuming "
            "without checking that they match",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    differences = settings_differences(saved, current)
    if differences:
        raise RunMismatchError(mismatch_message(trainer.run_dir, differences))


def state_dict(trainer: Trainer, batcher: Batches) -> dict[str, Any]:
    """Everything needed to continue training exactly from here."""
    return {
        "format": FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
        "balancer": trainer.balancer.state_dict(),
        "batcher": batcher.state_dict(),
        "rng": ckpt.rng_state(),
        "trainer": {
            "step": trainer.step,
            "skipped_steps": trainer.skipped_steps,
            **trainer.selection.state_dict(),
            "history": trainer.history,
            "config": asdict(trainer.config),
            "settings": trainer.started_settings or run_settings(trainer),
            "log_sizes": log_sizes(trainer.loggers),
        },
        "best_model": trainer.selection.best_state,
    }


def load_state_dict(trainer: Trainer, state: dict[str, Any], batcher: Batches) -> None:
    """Restore :func:`state_dict`; raises naming the mismatch for another model's state.
    Records logged after the checkpoint are cut from every log file."""
    if state.get("format") != FORMAT:
        raise ValueError("not a polytask checkpoint (missing format tag)")
    own = trainer.model.state_dict()
    theirs = state["model"]
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    shapes = sorted(k for k in set(own) & set(theirs) if own[k].shape != theirs[k].shape)
    if missing or unexpected or shapes:
        parts = [
            f"missing {missing[:5]}" if missing else "",
            f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shape differs for {shapes[:5]}" if shapes else "",
        ]
        raise ValueError("checkpoint is from another model: " + "; ".join(p for p in parts if p))
    trainer.model.load_state_dict(theirs)
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state["scheduler"] is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.balancer.load_state_dict(state["balancer"])
    batcher.load_state_dict(state["batcher"])
    saved = state["trainer"]
    trainer.step = saved["step"]
    trainer.skipped_steps = saved["skipped_steps"]
    trainer.selection.load_state_dict(saved, state["best_model"])
    trainer.history = list(saved["history"])
    ckpt.set_rng_state(state["rng"])
    truncate_logs(trainer.loggers, saved.get("log_sizes", {}))


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are plain settings (numbers, strings, booleans, None,
    and lists of them), less private, bookkeeping and progress ones."""
    skip = {"params", "task_names", "bound_task_names", "roles", "prior_weights", "training"}
    skip |= {"last_epoch"}  # a scheduler's progress

    def is_plain(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return all(is_plain(v) for v in value)
        return value is None or isinstance(value, bool | int | float | str)

    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in values.items()
        if not k.startswith("_") and k not in skip and is_plain(v)
    }
