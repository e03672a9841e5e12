"""GradVac: gradient vaccine, aligning task gradients to learnt similarity targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import GramianWeighting
from polytask.balancers.pcgrad import visiting_orders
from polytask.balancers.registry import register


@register("gradvac")
class GradVac(GramianWeighting):
    """Gradient Vaccine (Wang, Tsvetkov, Firat & Cao, ICLR 2021).

    Keeps an EMA target ``phihat_ij`` of the cosine similarity between tasks ``i`` and ``j``.
    For each task ``i``, starting from ``g_i' = g_i`` and visiting the other tasks in a random
    order, with ``phi = cos(g_i', g_j)``: if ``phi < phihat_ij`` then

    ``g_i' <- g_i' + c g_j``,
    ``c = ||g_i'|| (phihat sqrt(1-phi^2) - phi sqrt(1-phihat^2)) / (||g_j|| sqrt(1-phihat^2))``

    and always ``phihat_ij <- (1 - beta) phihat_ij + beta phi``. The update is
    ``(1/T) sum_i g_i'`` (the paper sums; mean convention). With ``phihat = 0`` this is PCGrad.
    Written on the Gramian: every ``g_i'`` is a combination of the ``g_k``.

    Args:
        beta: EMA rate of the similarity targets (0.01, the paper's value).
        seed: seed of the visiting orders (saved in ``state_dict``).
        eps: guard for zero norms (1e-8).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"mean_when_identical"})

    def __init__(self, beta: float = 0.01, seed: int = 0, eps: float = 1e-8) -> None:
        super().__init__()
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        self.beta, self.eps = beta, eps
        self.generator = torch.Generator().manual_seed(seed)
        self.targets: Tensor | None = None

    task_state: ClassVar[Mapping[str, PerTask]] = {"targets": PerTask(axes=(0, 1), fill=0.0)}

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64).numpy()
        T = G.shape[0]
        if self.targets is None:
            self.targets = torch.zeros(T, T, dtype=torch.float64)
        targets = self.targets.numpy()  # updated in place (shares memory)
        C = np.eye(T)
        M = G.copy()  # C G, kept up to date: M[i] += c_i G[j] when C[i, j] += c_i
        norms = np.sqrt(np.clip(np.diag(G), 0, None))
        # Each task i visits the others in its own random order; the T visits of step k
        # (one per task) are independent, so they run together.
        orders = visiting_orders(self.generator, T).numpy()
        rows = np.arange(T)
        for k in range(T - 1):
            js = orders[:, k]
            norm_j = norms[js]
            gi_norm = np.sqrt(np.maximum(np.einsum("ij,ij->i", M, C), 0.0))
            valid = (gi_norm > self.eps) & (norm_j > self.eps)
            # Rounding can step outside [-1, 1].
            phi = np.clip(M[rows, js] / np.where(valid, gi_norm * norm_j, 1.0), -1.0, 1.0)
            target = targets[rows, js]
            adjust = valid & (phi < target)
            root = np.sqrt(np.maximum(1 - target * target, self.eps))
            coeff = gi_norm * (target * np.sqrt(np.maximum(1 - phi * phi, 0.0)) - phi * root)
            step = np.where(adjust, coeff / np.where(adjust, norm_j * root, 1.0), 0.0)
            C[rows, js] += step
            M += step[:, None] * G[js]
            targets[rows, js] = np.where(valid, target + self.beta * (phi - target), target)
        weights = torch.from_numpy(C.sum(0) / T)
        return weights.to(gramian.device, gramian.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {
            **super().get_extra_state(),
            "generator": self.generator.get_state(),
            # A copy: the live targets are updated in place.
            "targets": None if self.targets is None else self.targets.clone(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.generator.set_state(state["generator"])
        self.targets = None if state["targets"] is None else state["targets"].clone()
