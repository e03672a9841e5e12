"""``polytask diagnose``: a short training run that measures why tasks fight."""

from __future__ import annotations

import dataclasses
from typing import Any

from polytask.balancers import create as create_balancer
from polytask.balancers.base import Balancer
from polytask.data.dataset import TensorTaskDataset
from polytask.evaluation.diagnosis import Diagnosis, Thresholds, diagnose
from polytask.evaluation.recorder import RecordingBalancer
from polytask.gradients.protocol import Level
from polytask.models.base import MultiTaskModel
from polytask.tasks.taskset import TaskSet
from polytask.training.experiment import ExperimentConfig, prepare
from polytask.training.optim import build_optimizer
from polytask.training.trainer import Trainer, TrainerConfig


def _record(trainer: Trainer, train: TensorTaskDataset, thresholds: Thresholds | None) -> Diagnosis:
    recorder = trainer.balancer
    assert isinstance(recorder, RecordingBalancer)
    trainer.fit(train, None, restore_best=False)
    assert recorder.recording is not None
    return diagnose(recorder.recording, thresholds)


def diagnose_training(
    model: MultiTaskModel,
    tasks: TaskSet,
    train: TensorTaskDataset,
    *,
    level: Level = "representation",
    steps: int = 200,
    balancer: str | Balancer = "equal",
    optimizer: str = "adam",
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    thresholds: Thresholds | None = None,
) -> Diagnosis:
    """Train ``model`` for ``steps`` steps on ``train`` while recording every step's task
    losses and the Gramian of the task gradients at ``level``, then :func:`diagnose`.

    Args:
        model, tasks, train: the user's own model, tasks and training data.
        level: where task gradients are compared: ``representation`` (the shared features)
            or ``parameter`` (the shared parameters).
        steps: optimizer steps of the short run.
        balancer: how the run trains (``equal`` by default: the seesaw shows there); a loss
            weighting whose objective is the weighted sum, or a Gramian method.
        optimizer, lr, batch_size, seed: the short run's optimisation.
        thresholds: when a cause counts as present.
    """
    inner = create_balancer(balancer) if isinstance(balancer, str) else balancer
    recorder = RecordingBalancer(inner, level)
    opt = build_optimizer(optimizer, model, recorder.parameters(), lr=lr)
    epochs = -(-steps * batch_size // len(train)) + 1
    config = TrainerConfig(
        epochs=epochs,
        max_steps=steps,
        batch_size=batch_size,
        level=level,
        progress=False,
        seed=seed,
    )
    return _record(Trainer(model, tasks, recorder, opt, config=config), train, thresholds)


def diagnose_config(
    config: ExperimentConfig, steps: int = 200, thresholds: Thresholds | None = None
) -> Diagnosis:
    """The diagnosis of a configuration: its data, tasks, model, optimizer and gradient
    level, trained for ``steps`` steps with its balancer (recorded through
    :class:`~polytask.evaluation.recorder.RecordingBalancer`)."""
    short: dict[str, Any] = {"max_steps": steps, "patience": None}
    config = dataclasses.replace(
        config, schedule=dataclasses.replace(config.schedule, **short), output=None
    )  # its progress setting stays: a bar over the recorded steps, on stderr
    level = config.gradients.level
    prepared = prepare(config, wrap_balancer=lambda b: RecordingBalancer(b, level), write=False)
    trainer = prepared.trainer
    batches = -(-len(prepared.data.train) // trainer.config.batch_size)
    trainer.config.epochs = max(trainer.config.epochs, -(-steps // batches))
    return _record(trainer, prepared.data.train, thresholds)
