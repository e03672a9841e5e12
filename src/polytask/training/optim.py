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

    The implementation is the fused kernel where this torch has one for the parameters'
    device (Adam/AdamW on CPU since torch 2.4, and on CUDA; 2-3x faster than the multi-tensor
    one on a small model), else the multi-tensor (``foreach``) one; both compute the same
    update. ``options`` may name ``fused`` or ``foreach`` to choose."""
    if name not in OPTIMIZERS:
        raise KeyError(unknown_name_message("optimizer", name, list(OPTIMIZERS)))
    groups: list[dict[str, Any]] = [
        {"params": list(model.parameters()), "weight_decay": weight_decay}
    ]
    extra = [p for p in extra if p.requires_grad]
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    if "fused" not in options and "foreach" not in options:
        params = [p for group in groups for p in group["params"]]
        options["fused" if _fused_available(name, params) else "foreach"] = True
    return OPTIMIZERS[name](groups, lr=lr, **options)


def _fused_available(name: str, params: list[torch.Tensor]) -> bool:
    """Whether torch has a fused ``name`` kernel for these parameters (floating point, all on
    one device type that the kernel supports)."""
    if name not in ("adam", "adamw") or not params:
        return False
    devices = {p.device.type for p in params}
    if len(devices) != 1 or not all(p.is_floating_point() for p in params):
        return False
    version = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
    return devices == {"cuda"} or (devices == {"cpu"} and version >= (2, 4))


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
