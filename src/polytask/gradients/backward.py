"""``polytask.backward``: one call that turns task losses into gradients, for any balancer.

Usage inside any training loop::

    out = model(x)
    losses = tasks.losses(out, y)
    polytask.backward(losses, balancer, features=out.features)   # or shared_params=...
    optimizer.step()

Dispatch on what the balancer needs:

- losses only: one backward of the balancer's objective (``sum_t w_t L_t``);
- the Gramian: per-task gradients at the chosen level -> ``G`` (``T x T``) -> weights ``w``
  -> one backward of ``sum_t w_t L_t`` (the trunk differentiated once);
- the Jacobian: per-task gradients -> a direction ``d`` for the shared part, put in place of
  the shared gradient by a hook during one backward of ``sum_t h_t L_t`` (heads).

The level is the representation level when only ``features`` is given, and the parameter
level when ``shared_params`` is given (with ``features`` too, the shared-parameter Jacobian is
taken through the features, which is faster). Gradients are accumulated into ``.grad``
like ``Tensor.backward``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from polytask.gradients.gramian import flatten_jacobian, gramian, split_direction
from polytask.gradients.jacobian import (
    Features,
    Method,
    branch_base,
    feature_jacobian,
    parameter_jacobian,
)
from polytask.gradients.losses import LossesLike, as_loss_list
from polytask.gradients.protocol import BalancerProtocol, Level


class BalancerError(RuntimeError):
    """A balancer produced weights or a direction that are not finite."""


@dataclass
class BackwardResult:
    """What :func:`backward` did.

    Attributes:
        weights: the task weights used for the final backward ``(T,)`` (detached), or
            ``None`` when the step was skipped.
        gramian: the Gramian ``(T, T)`` for Gramian methods, else ``None``.
        level: ``"representation"``, ``"parameter"`` or ``None`` (losses only).
        skipped: ``True`` when a non-finite loss made the step a no-op.
    """

    weights: Tensor | None
    gramian: Tensor | None
    level: Level | None
    skipped: bool = False


def resolve_level(features: Features | None, shared_params: object | None) -> Level | None:
    """``parameter`` if shared parameters are given, ``representation`` if only features."""
    if shared_params is not None:
        return "parameter"
    if features is not None:
        return "representation"
    return None


def _check_finite(name: str, value: Tensor, what: str) -> None:
    if not bool(torch.isfinite(value).all()):
        raise BalancerError(
            f"{name} produced non-finite {what} {value.detach().cpu().tolist()}; this usually "
            "means a task gradient is NaN/inf (check the losses) or the method's solver failed "
            "on a degenerate Gramian"
        )


def backward(
    losses: LossesLike,
    balancer: BalancerProtocol,
    *,
    features: Features | None = None,
    shared_params: Iterable[Tensor] | None = None,
    method: Method = "auto",
    retain_graph: bool = False,
) -> BackwardResult:
    """Accumulate into ``.grad`` the update that ``balancer`` makes of the task losses.

    Args:
        losses: :class:`~polytask.tasks.TaskLosses` (from ``TaskSet.losses``), ``{task: loss}``,
            a sequence of scalar losses or a 1-D loss tensor.
        balancer: any :class:`~polytask.balancers.Balancer`.
        features: the model's shared representation (``outputs.features``): a tensor
            ``(B, ...)`` or ``{task: branch}``. Alone, it selects the representation level.
        shared_params: the shared parameters (``model.shared_parameters()``); selects the
            parameter level (exact per-task gradients of the shared weights).
        method: how per-task gradients are computed: ``auto``, ``loop`` (reference) or ``vmap``.
        retain_graph: keep the graph after the final backward.

    Returns:
        :class:`BackwardResult` with the weights used (and the Gramian for Gramian methods).

    Raises:
        ValueError: the balancer cannot run at the chosen level, or its inputs are missing.
        BalancerError: the balancer returned non-finite weights or direction.
    """
    items = as_loss_list(losses)
    level = resolve_level(features, shared_params)
    balancer.check_level(level)
    balancer.bind(items.names, items.roles, items.prior_weights)
    name = type(balancer).__name__
    if items.skip:
        return BackwardResult(None, None, level, skipped=True)
    vector = items.stack()
    params = None
    if shared_params is not None:
        params = [p for p in shared_params if p.requires_grad]

    if balancer.needs == "losses":
        weights = balancer.loss_weights(vector.detach()).detach()
        _check_finite(name, weights, "weights")
        balancer.objective(vector, weights).backward(retain_graph=retain_graph)
        return BackwardResult(weights, None, level)

    assert level is not None
    if level == "representation":
        assert features is not None
        blocks = [feature_jacobian(items.values, items.names, features, method)]
    else:
        assert params is not None
        blocks = parameter_jacobian(items.values, items.names, params, features, method)

    if balancer.needs == "gramian":
        G = gramian(blocks)
        weights = balancer.gramian_weights(G, vector.detach()).detach()
        _check_finite(name, weights, "weights")
        (weights.to(vector.dtype) * vector).sum().backward(retain_graph=retain_graph)
        return BackwardResult(weights, G, level)

    if balancer.needs == "jacobian":
        direction = balancer.aggregate(flatten_jacobian(blocks))
        _check_finite(name, direction, "direction")
        parts = split_direction(direction, blocks)
        if level == "representation":
            assert features is not None
            targets = [
                features if isinstance(features, Tensor) else branch_base(features, items.names)
            ]
        else:
            assert params is not None
            targets = params
        handles = [
            t.register_hook(lambda _g, d=d: d.to(_g.dtype))
            for t, d in zip(targets, parts, strict=True)
        ]
        try:
            head = balancer.head_weights(vector.detach()).detach()
            (head * vector).sum().backward(retain_graph=retain_graph)
        finally:
            for handle in handles:
                handle.remove()
        return BackwardResult(head, None, level)

    raise TypeError(
        f"{name}.needs must be 'losses', 'gramian' or 'jacobian', not {balancer.needs!r}"
    )
