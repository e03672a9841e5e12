"""FAMO: fast adaptive multitask optimisation."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

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

    Args:
        beta: learning rate of the logits (0.025).
        gamma: weight decay of the logits (0.01).
        min_losses: lower bounds ``m_k`` of the losses (``None``: 0).
        eps: added to the shifted losses (1e-8).
    """

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
        self.adam: torch.optim.Adam | None = None
        self.previous: Tensor | None = None

    def on_bind(self) -> None:
        if self.min_losses is not None and len(self.min_losses) != self.num_tasks:
            raise ValueError(
                f"min_losses has {len(self.min_losses)} entries for {self.num_tasks} tasks"
            )
        self.logits = torch.zeros(self.num_tasks, dtype=torch.float64, requires_grad=True)
        self.adam = torch.optim.Adam([self.logits], lr=self.beta, weight_decay=self.gamma)

    def _shifted(self, losses: Tensor) -> Tensor:
        values = losses.detach().to("cpu", torch.float64)
        if self.min_losses is not None:
            values = values - torch.tensor(self.min_losses, dtype=torch.float64)
        return values.clamp_min(0) + self.eps

    def _update_logits(self, shifted: Tensor) -> None:
        assert self.logits is not None and self.adam is not None
        if self.previous is None:
            return
        delta = self.previous.log() - shifted.log()
        self.adam.zero_grad()
        z = torch.softmax(self.logits, dim=0)
        (grad,) = torch.autograd.grad(z, self.logits, grad_outputs=delta)
        self.logits.grad = grad
        self.adam.step()

    def loss_weights(self, losses: Tensor) -> Tensor:
        shifted = self._shifted(losses)
        with torch.enable_grad():
            self._update_logits(shifted)
        self.previous = shifted
        assert self.logits is not None
        z = torch.softmax(self.logits.detach(), dim=0)
        c = 1.0 / (z / shifted).sum()
        return (c * z / shifted).to(losses.device, losses.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        if self.logits is not None and self.adam is not None:
            state.update(
                logits=self.logits.detach().clone(),
                # A deep copy: the live optimizer keeps updating its moment tensors in place.
                adam=copy.deepcopy(self.adam.state_dict()),
                previous=self.previous,
            )
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        if "logits" in state:
            self.on_bind()
            assert self.logits is not None and self.adam is not None
            with torch.no_grad():
                self.logits.copy_(state["logits"])
            self.adam.load_state_dict(state["adam"])
            self.previous = state["previous"]
