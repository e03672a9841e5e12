"""Optimizers and schedulers by name, with balancer parameters kept out of weight decay."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from polytask._registry import unknown_name_message

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
SCHEDULERS = ("none", "cosine", "step")


def build_optimizer(
    name: str,
    model: nn.Module,
    extra: Iterable[nn.Parameter] = (),
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    **options: Any,
) -> torch.optim.Optimizer:
    """Optimizer ``name`` (``adam``, ``adamw``, ``sgd``) over the model's parameters, plus
    ``extra`` parameters (a balancer's learnable weights) in a group without weight decay.
    Uses the multi-tensor (``foreach``) implementation."""
    if name not in OPTIMIZERS:
        raise KeyError(unknown_name_message("optimizer", name, list(OPTIMIZERS)))
    groups: list[dict[str, Any]] = [
        {"params": list(model.parameters()), "weight_decay": weight_decay}
    ]
    extra = [p for p in extra if p.requires_grad]
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    return OPTIMIZERS[name](groups, lr=lr, foreach=True, **options)


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    step_size: int = 1000,
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-step learning-rate schedule: ``none``, ``cosine`` (to 0 over ``total_steps``) or
    ``step`` (multiply by ``gamma`` every ``step_size`` steps)."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    raise KeyError(unknown_name_message("scheduler", name, list(SCHEDULERS)))
