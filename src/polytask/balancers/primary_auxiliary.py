"""Primary/auxiliary MTL: improve the main tasks without letting auxiliary tasks get worse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import simplex_cone_min_norm


@register("primary_auxiliary")
class PrimaryAuxiliary(GramianWeighting):
    """Primary/auxiliary (main/auxiliary) MTL by constrained gradients (reference text 03,
    Su Jianlin, "Multi-task learning (3): primary and secondary", 2022).

    With main gradient ``g_0`` and auxiliary gradients ``g_1 .. g_n`` the update solves
    ``max_u <u, g_0> - 1/2 ||u||^2  s.t.  <u, g_i> >= 0`` (no auxiliary loss increases to first
    order). Its dual is ``u = g_0 + sum_i l_i g_i`` with ``l >= 0`` minimising ``||u||^2``; for
    one auxiliary ``l = relu(-<g_0, g_1>) / ||g_1||^2``. With several main tasks, their
    gradients are combined on the simplex (``min ||sum_i a_i g_i + sum_j l_j g_j||^2``,
    ``a`` in the simplex, ``l >= 0``), which for main tasks only is MGDA. Solved exactly on the
    Gramian (:func:`~polytask.balancers.solvers.simplex_cone_min_norm`). Roles come from
    ``Task.role``.

    When no auxiliary task conflicts, the update is the main gradient (weights ``1`` on a
    single main task, ``0`` on the auxiliaries). Heads (the head rule of
    :mod:`polytask.balancers.base`, on this method's scale where one main task has weight 1):
    each main task's head is trained on its own loss with weight ``1 / (number of main
    tasks)``, each auxiliary task's head with ``auxiliary_head_weight``, whatever ``a`` and
    ``l`` are (``l`` is unbounded when an auxiliary gradient is tiny; the trunk follows ``a``
    and ``l`` exactly).

    A batch with no label for any main task (only auxiliary tasks present) gives no shared
    update (weights 0); the auxiliary heads still train.

    Args:
        auxiliary_head_weight: weight of an auxiliary task's loss for its own head's
            parameters (1.0; 0 leaves those heads untrained).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"homogeneous", "mean_when_identical"})

    uses_roles: ClassVar[bool] = True

    def __init__(self, auxiliary_head_weight: float = 1.0) -> None:
        super().__init__()
        if auxiliary_head_weight < 0:
            raise ValueError(f"auxiliary_head_weight must be >= 0, got {auxiliary_head_weight}")
        self.auxiliary_head_weight = auxiliary_head_weight

    def main_mask(self, device: torch.device | None = None) -> Tensor:
        """``True`` for main tasks, in task order (of the present tasks during a step with
        absent tasks)."""
        mask = torch.tensor([self.roles.get(n, "main") == "main" for n in self.task_names])
        return mask if device is None else mask.to(device)

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        main = self.main_mask()
        if not bool(main.any()):
            if self.bound_task_names is None:
                raise ValueError(
                    "primary_auxiliary needs at least one task with role='main'; all tasks "
                    "are auxiliary"
                )
            # Only auxiliary tasks have labels in this batch: nothing to serve.
            return torch.zeros(gramian.shape[0], dtype=gramian.dtype, device=gramian.device)
        return simplex_cone_min_norm(gramian, main)

    def head_task_weights(self, weights: Tensor) -> Tensor:
        main = self.main_mask(weights.device)
        per_main = 1.0 / max(int(main.sum()), 1)
        return torch.where(
            main,
            torch.full_like(weights, per_main),
            torch.full_like(weights, self.auxiliary_head_weight),
        )


def auxiliary_l2_(params: Iterable[Tensor], per_tensor: bool = True) -> None:
    """L2 regularisation as an auxiliary task with no coefficient to tune (reference text 03):
    in place, ``g <- g + relu(-<g, theta>) / ||theta||^2 theta`` for every parameter with a
    gradient, so that the update ``-lr g`` never increases ``||theta||^2`` to first order,
    while leaving ``g`` unchanged whenever it already does not. Call it between
    ``backward`` and ``optimizer.step()`` (it is the two-task primary/auxiliary solution with
    the auxiliary loss ``1/2 ||theta||^2``, whose gradient is ``theta``).

    Args:
        params: the parameters to regularise.
        per_tensor: apply the correction to each tensor separately (default) or once to the
            concatenation of all of them.
    """
    tensors = [p for p in params if p.grad is not None]
    if not tensors:
        return
    with torch.no_grad():
        if per_tensor:
            for p in tensors:
                assert p.grad is not None
                sq = (p * p).sum()
                coeff = torch.relu(-(p.grad * p).sum()) / sq.clamp_min(1e-30)
                p.grad.add_(coeff * p)
            return
        dot = torch.stack([(p.grad * p).sum() for p in tensors if p.grad is not None]).sum()
        sq = torch.stack([(p * p).sum() for p in tensors]).sum()
        coeff = torch.relu(-dot) / sq.clamp_min(1e-30)
        for p in tensors:
            assert p.grad is not None
            p.grad.add_(coeff * p)
