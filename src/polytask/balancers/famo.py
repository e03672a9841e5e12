"""FAMO: fast adaptive multitask optimisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("famo")
class FAMO(LossWeighting):
    """Fast Adaptive Multitask Optimization (Liu, Liu, Jin, Stone & Liu, NeurIPS 2023):
    decrease all losses at a balanced rate with O(1) cost per step (no per-task gradients).

    With logits ``xi`` (``z = softmax(xi)``) and shifted losses ``l_k = L_k - m_k + eps``
    (``m_k`` a lower bound, 0 by default), the update direction is

    ``d = sum_k w_k grad L_k``,  ``w_k = c z_k / l_k``,  ``c = (sum_k z_k / l_k)^-1``

    (the gradient of ``sum_k z_k log l_k`` rescaled so that the weights sum to 1). After each
    step the logits move to favour the tasks whose log-loss fell least:
    ``xi <- xi - beta (grad_xi z)^T delta`` with ``delta_k = log l_k(t) - log l_k(t+1)``, by
    Adam with weight decay ``gamma`` as in the paper's code. Here ``l(t+1)`` is the next step's
    loss (on the next batch), which avoids the extra forward pass the paper's code makes.

    Absent tasks (no label in the batch) keep their logit, moments and previous loss; the
    softmax and the logits' step run over the present tasks, and a task's ``delta`` is taken
    between its last two present steps (0 for a task's first one).

    Args:
        beta: learning rate of the logits (0.025).
        gamma: weight decay of the logits (0.01).
        min_losses: lower bounds ``m_k`` of the losses (``None``: 0).
        eps: added to the shifted losses (1e-8).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant", "weights_sum_to_one"})

    def __init__(
        self,
        beta: float = 0.025,
        gamma: float = 0.01,
        min_losses: list[float] | None = None,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.beta, self.gamma, self.eps = beta, gamma, eps
        self.min_losses = min_losses
        self.logits: Tensor | None = None
        # Adam's moments of the logits ((2, T): first and second) and its step count (the
        # paper's code uses torch.optim.Adam; the same update is written out here: five
        # tensor operations instead of an optimizer's per-step overhead, on the losses'
        # device).
        self.moments: Tensor | None = None
        self.steps = 0
        self.previous: Tensor | None = None
        # min_losses as a tensor, moved to the losses' device once.
        self.floors = None if min_losses is None else torch.tensor(min_losses, dtype=torch.float64)

    task_state: ClassVar[Mapping[str, PerTask]] = {
        "logits": PerTask(fill=0.0),
        "moments": PerTask(axes=(1,), fill=0.0),
        "previous": PerTask(),
        "floors": PerTask(),
    }

    def on_bind(self) -> None:
        if self.min_losses is not None and len(self.min_losses) != self.num_tasks:
            raise ValueError(
                f"min_losses has {len(self.min_losses)} entries for {self.num_tasks} tasks"
            )

    def _shifted(self, losses: Tensor) -> Tensor:
        values = losses.detach().to(torch.float64)
        if self.floors is not None:
            if self.floors.device != values.device:
                self.floors = self.floors.to(values.device)
            values = values - self.floors
        return values.clamp_min(0) + self.eps

    def _update_logits(self, shifted: Tensor) -> None:
        """One Adam step (Kingma & Ba 2015, with torch's L2 weight decay ``gamma``) on the
        logits along ``(grad_xi z)^T delta = z * (delta - z^T delta)``."""
        assert self.logits is not None and self.moments is not None
        if self.previous is None:
            return
        # A task seen for the first time has no previous loss (NaN): no change for it.
        delta = torch.nan_to_num(self.previous.log() - shifted.log(), nan=0.0)
        z = torch.softmax(self.logits, dim=0)
        grad = z * (delta - (z * delta).sum()) + self.gamma * self.logits
        beta1, beta2 = 0.9, 0.999
        self.steps += 1
        first, second = self.moments[0], self.moments[1]
        first.mul_(beta1).add_(grad, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (second / (1 - beta2**self.steps)).sqrt_().add_(1e-8)
        self.logits.addcdiv_(first, denominator, value=-self.beta / (1 - beta1**self.steps))

    def loss_weights(self, losses: Tensor) -> Tensor:
        shifted = self._shifted(losses)
        if self.logits is None or self.logits.device != shifted.device:
            self._place(shifted.device)
        self._update_logits(shifted)
        self.previous = shifted
        assert self.logits is not None
        z = torch.softmax(self.logits, dim=0)
        c = 1.0 / (z / shifted).sum()
        return (c * z / shifted).to(losses.dtype)

    def _place(self, device: torch.device) -> None:
        """Create the logits and Adam's moments (zeros), or move them, to ``device``."""
        if self.logits is None:
            self.logits = torch.zeros(self.num_tasks, dtype=torch.float64, device=device)
            self.moments = torch.zeros(2, self.num_tasks, dtype=torch.float64, device=device)
        else:
            assert self.moments is not None
            self.logits = self.logits.to(device)
            self.moments = self.moments.to(device)
        if self.previous is not None:
            self.previous = self.previous.to(device)

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        if self.logits is not None and self.moments is not None:
            state.update(
                logits=self.logits.clone(),
                moments=self.moments.clone(),
                steps=self.steps,
                previous=self.previous,
            )
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        if "logits" in state:
            self.logits = state["logits"].clone()
            if "adam" in state:  # older checkpoints: a torch.optim.Adam state_dict
                adam = state["adam"]["state"].get(0, {})
                zeros = torch.zeros_like(self.logits)
                moments = [adam.get("exp_avg", zeros), adam.get("exp_avg_sq", zeros)]
                steps = adam.get("step", 0)
            else:
                moments, steps = state["moments"], state["steps"]
            self.moments = torch.stack([torch.as_tensor(m) for m in moments]).clone()
            self.steps = int(steps)
            self.previous = state["previous"]
