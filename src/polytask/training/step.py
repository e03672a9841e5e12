"""One training step's gradients: forward, task losses, ``polytask.backward`` at the
configured level (the optimizer step and the bookkeeping are the trainer's)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Protocol

import torch

from polytask.balancers.base import Balancer
from polytask.data.dataset import Batch
from polytask.gradients.backward import BackwardResult, backward
from polytask.gradients.linear import LinearTaps
from polytask.models.base import MultiTaskModel
from polytask.outputs import TaskOutputs, features_unused
from polytask.tasks.taskset import TaskLosses, TaskSet
from polytask.training.trainer_config import TrainerConfig


class StepOwner(Protocol):
    """What a step reads from its trainer."""

    model: MultiTaskModel
    tasks: TaskSet
    balancer: Balancer
    optimizer: torch.optim.Optimizer
    config: TrainerConfig
    device: torch.device


class GradientStep:
    """Computes one batch's update into ``.grad``.

    The forward runs under bfloat16 autocast on CUDA with ``config.amp``, and inside
    :func:`~polytask.outputs.features_unused` when the balancer reads losses only. At the
    parameter level a Gramian method's shared linear layers are tapped
    (:class:`~polytask.gradients.linear.LinearTaps`), so the engine takes the Gramian from
    activations. The model's own penalty (``model.penalty()``) is added unweighted.
    """

    def __init__(self, owner: StepOwner) -> None:
        self.owner = owner  # read at every step: the trainer's current parts
        self._linear_taps: LinearTaps | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bfloat16 autocast on CUDA with ``config.amp``; nothing otherwise."""
        if self.owner.config.amp and self.owner.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, batch: Batch) -> tuple[TaskLosses, BackwardResult]:
        """Zero the gradients, then forward, losses and backward on ``batch``."""
        model, balancer = self.owner.model, self.owner.balancer
        if not model.training:
            model.train()
        batch = batch.to(self.owner.device)
        unused = features_unused() if balancer.needs == "losses" else contextlib.nullcontext()
        taps = self._taps()
        with self.autocast(), unused, taps or contextlib.nullcontext():
            outputs = model(batch.inputs)
            losses = self.owner.tasks.losses(outputs, batch.targets, batch.masks)
        self.owner.optimizer.zero_grad(set_to_none=True)
        penalty = model.penalty()
        if penalty is not None and not losses.skip:
            # The model's own regulariser, never weighted by the balancer; its graph may
            # share the forward's (activations), so it goes first and keeps that graph.
            penalty.backward(retain_graph=True)
        return losses, self._backward(outputs, losses, taps)

    def _backward(
        self, outputs: TaskOutputs, losses: TaskLosses, taps: LinearTaps | None
    ) -> BackwardResult:
        cfg = self.owner.config
        if self.owner.balancer.needs == "losses":
            return backward(losses, self.owner.balancer)
        if cfg.level == "representation":
            if outputs.features is None:
                raise ValueError(
                    "the model returned no features; use level='parameter' or a model that "
                    "exposes its shared representation"
                )
            return backward(
                losses, self.owner.balancer, features=outputs.features, method=cfg.gradient_method
            )
        # Branch features let the engine take the shared Jacobian through the trunk alone
        # (checked by the engine); a single features tensor cannot be checked: left out.
        branches = outputs.features if isinstance(outputs.features, Mapping) else None
        result = backward(
            losses,
            self.owner.balancer,
            features=branches,
            shared_params=self.owner.model.shared_parameters(),
            method=cfg.gradient_method,
            taps=taps,
        )
        if taps is not None:
            taps.clear()
        return result

    def _taps(self) -> LinearTaps | None:
        """The shared linear layers' recorder, for Gramian methods at the parameter level
        (see :mod:`polytask.gradients.linear`)."""
        if self.owner.config.level != "parameter" or self.owner.balancer.needs != "gramian":
            return None
        if self._linear_taps is None:
            self._linear_taps = LinearTaps(self.owner.model.shared_modules(), warn_unused=False)
        return self._linear_taps
