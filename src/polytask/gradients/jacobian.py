"""Per-task gradients (Jacobian blocks) at the representation and the parameter level.

A *Jacobian block* is a tensor ``(T, *shape)`` holding, for each of the ``T`` tasks, the
gradient of that task's loss with respect to one tensor (the shared features, or one shared
parameter). The full Jacobian ``J`` (``T x P``) is the concatenation of the flattened blocks;
the engine never needs to build it for Gramian methods (see :mod:`polytask.gradients.gramian`).

Two ways to compute blocks, with the same result:

- ``loop``: one ``torch.autograd.grad`` call per task (the reference; each call reaches only
  that task's head because each task loss is its own autograd node);
- ``vmap``: one batched backward (``is_grads_batched=True``) with the identity as the batch
  of output gradients.

At the representation level with per-task branches (:func:`polytask.outputs.branch`) one
ordinary backward of ``sum_t L_t`` gives every task's feature gradient at once, since branch
``t`` reaches only head ``t``: the heads are differentiated once, the trunk not at all.
At the parameter level with features given, the shared-parameter Jacobian is the trunk's
vector-Jacobian product with those feature gradients (heads once, trunk batched ``T`` times).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from polytask._registry import unknown_name_message
from polytask.gradients.graph import walk
from polytask.gradients.unstack import only_task

Method = Literal["auto", "loop", "vmap"]
Features = Tensor | Mapping[str, Tensor]


def _check_method(method: str) -> None:
    if method not in ("auto", "loop", "vmap"):
        raise ValueError(f"gradient method must be 'auto', 'loop' or 'vmap', got {method!r}")


def _zeros_for_unused(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like, strict=True)]


def branch_base(features: Mapping[str, Tensor], names: Sequence[str]) -> Tensor:
    """Check that ``features`` holds one branch per task of one shared tensor; return it."""
    for key in features:
        if key not in names:
            raise KeyError(unknown_name_message("task in features", str(key), list(names)))
    missing = [n for n in names if n not in features]
    if missing:
        raise KeyError(f"features has no branch for task(s) {missing}")
    bases = {id(f._base if f._base is not None else f) for f in features.values()}
    first = features[names[0]]
    if len(bases) != 1 or any(f.shape != first.shape for f in features.values()):
        raise ValueError(
            "per-task features must be branches of one shared tensor, made by "
            "polytask.branch(features, task_names); got tensors of different origin or shape"
        )
    base = first._base if first._base is not None else first
    return base


def branches_exclusive(
    losses: Sequence[Tensor], branches: Sequence[Tensor], base: Tensor
) -> list[list[Tensor]] | None:
    """Check that each loss reaches the shared features only through its own branch.

    Returns:
        Per task, the leaf tensors between its loss and the branches (its head's parameters),
        or ``None`` when some loss also reads the shared tensor directly, or reads another
        task's branch (a loss built on another task's head, as ESMM's
        ``ctcvr = ctr * cvr``): then the gradient of ``sum_t L_t`` with respect to branch
        ``t`` is not ``dL_t/dfeatures``, and per-task gradients must be taken one by one.
    """
    stops = [b.grad_fn for b in branches]
    blocked = [base.grad_fn] if base.grad_fn is not None else []
    plan = []
    for loss, own in zip(losses, stops, strict=True):
        found = walk(loss, stops=stops, blocked=blocked)
        if found.reached_blocked or found.stopped_at - {id(own)}:
            return None
        plan.append(found.leaves)
    return plan


def feature_jacobian(
    losses: Sequence[Tensor],
    names: Sequence[str],
    features: Features,
    method: Method = "auto",
) -> Tensor:
    """Per-task gradients of the losses with respect to the shared features.

    Args:
        losses: ``T`` scalar losses (separate autograd nodes).
        names: their task names.
        features: the shared representation ``(B, ...)``, or ``{task: branch}``.
        method: ``auto`` (one backward with branches, else ``loop``), ``loop`` or ``vmap``.

    Returns:
        ``(T, B, ...)``: row ``t`` is ``dL_t / d features``. The graph is retained.
    """
    _check_method(method)
    if isinstance(features, Mapping):
        base = branch_base(features, names)
        inputs = [features[n] for n in names]
        if method != "loop" and branches_exclusive(losses, inputs, base) is not None:
            total = torch.stack(list(losses)).sum()
            grads = torch.autograd.grad(total, inputs, retain_graph=True, allow_unused=True)
            return torch.stack(_zeros_for_unused(grads, inputs))
        # The reference, or a loss that also reads the shared tensor directly: per-task
        # gradients with respect to the shared tensor itself (every path counted).
        features = base
    if not features.requires_grad:
        raise ValueError(
            "features must be a tensor that requires grad (the model's shared representation), "
            "or {task: branch} made by polytask.branch"
        )
    if method == "vmap":
        return _vmap_grad(losses, [features])[0]
    rows = []
    for t, loss in enumerate(losses):
        with only_task(t):  # a stacked loss tensor sends this task's gradient only
            rows.append(
                torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True)[0]
            )
    return torch.stack(_zeros_for_unused(rows, [features] * len(losses)))


def _vmap_grad(losses: Sequence[Tensor], inputs: Sequence[Tensor]) -> list[Tensor]:
    stacked = torch.stack(list(losses))
    eye = torch.eye(len(losses), device=stacked.device, dtype=stacked.dtype)
    grads = torch.autograd.grad(
        stacked,
        list(inputs),
        grad_outputs=eye,
        is_grads_batched=True,
        retain_graph=True,
        allow_unused=True,
        materialize_grads=True,
    )
    return list(grads)


def parameter_jacobian(
    losses: Sequence[Tensor],
    names: Sequence[str],
    params: Sequence[Tensor],
    features: Features | None = None,
    method: Method = "auto",
) -> list[Tensor]:
    """Per-task gradients of the losses with respect to the shared parameters.

    Args:
        losses: ``T`` scalar losses.
        names: their task names.
        params: the shared parameters (those that require grad).
        features: optional shared representation that every shared parameter feeds and through
            which alone they reach the losses (true of a trunk); then the Jacobian is taken as
            the trunk's vector-Jacobian product with the per-task feature gradients. With
            per-task branches this is checked: a loss that reads the features outside its
            branch, or a head that uses a shared parameter directly, raises ``ValueError``.
        method: ``auto`` (through features: one batched backward of the trunk; without:
            one backward per task, each reaching only its own head), ``loop`` or ``vmap``
            (one batched backward over the stacked losses); a failing batched backward raises,
            naming ``loop`` as the fix.

    Returns:
        One block ``(T, *p.shape)`` per parameter, in order. The graph is retained.
    """
    _check_method(method)
    params = list(params)
    if not params:
        raise ValueError("shared_params is empty: the model exposes no shared parameter")
    if features is not None:
        base, _ = check_chain(losses, names, features, params)
        rows = feature_jacobian(losses, names, features, "auto" if method == "vmap" else method)
        return trunk_jacobian(base, params, rows, method)
    if method in ("loop", "auto"):
        # Without features, "auto" is the loop: a batched backward over the stacked losses
        # would push zero cotangents through every head (T^2 head work).
        rows_per_task = []
        for t, loss in enumerate(losses):
            with only_task(t):  # a stacked loss tensor sends this task's gradient only
                grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            rows_per_task.append(_zeros_for_unused(grads, params))
        return [torch.stack(col) for col in zip(*rows_per_task, strict=True)]
    with _explain_vmap_failure():
        return _vmap_grad(losses, params)


def check_chain(
    losses: Sequence[Tensor], names: Sequence[str], features: Features, params: Sequence[Tensor]
) -> tuple[Tensor, list[list[Tensor]] | None]:
    """Check that the shared-parameter Jacobian may be taken through ``features``.

    Returns:
        The shared tensor and, for per-task branches that each loss reads alone, each task's
        head leaves (``None`` when a loss reads the features other than through its own
        branch: the chain through the shared tensor is still exact, with per-task gradients
        taken with respect to it).

    Raises:
        ValueError: a head uses a shared parameter directly (then the chain through the
            features would miss a path).
    """
    if not isinstance(features, Mapping):
        return features, None
    base = branch_base(features, names)
    plan = branches_exclusive(losses, [features[n] for n in names], base)
    if plan is None:
        stop = [base.grad_fn] if base.grad_fn is not None else []
        heads = [walk(loss, stops=stop).leaves for loss in losses]
    else:
        heads = plan
    shared = {id(p) for p in params}
    if any(id(leaf) in shared for leaves in heads for leaf in leaves):
        raise ValueError(
            "a task head uses a shared parameter directly, so the parameter Jacobian cannot be "
            "taken through the features; leave features out at the parameter level"
        )
    return base, plan


def trunk_jacobian(
    base: Tensor, params: Sequence[Tensor], rows: Tensor, method: Method = "auto"
) -> list[Tensor]:
    """The shared-parameter Jacobian from per-task feature gradients: the trunk's
    vector-Jacobian product ``rows[t]^T dz/dtheta`` for every task, by one batched backward
    (``auto``/``vmap``) or one backward per task (``loop``).

    Args:
        base: the shared features ``z`` ``(B, ...)``.
        params: the shared parameters. One that does not feed ``z`` (a segment embedding
            left unused by a batch) gets a zero block: callers check beforehand that no
            shared parameter reaches the losses other than through ``z``
            (:func:`check_chain`), so such a parameter is unused by every loss.
        rows: ``(T, B, ...)`` per-task gradients with respect to ``z``.

    Returns:
        One block ``(T, *p.shape)`` per parameter. The graph is retained.
    """
    if method == "loop":
        per_task = [
            _zeros_for_unused(
                torch.autograd.grad(
                    base, params, grad_outputs=row, retain_graph=True, allow_unused=True
                ),
                params,
            )
            for row in rows
        ]
        return [torch.stack(list(col)) for col in zip(*per_task, strict=True)]
    with _explain_vmap_failure():
        grads = torch.autograd.grad(
            base, params, grad_outputs=rows, is_grads_batched=True, retain_graph=True,
            allow_unused=True,
        )  # fmt: skip
    T = rows.shape[0]
    return [
        p.new_zeros((T, *p.shape)) if g is None else g for g, p in zip(grads, params, strict=True)
    ]


@contextlib.contextmanager
def _explain_vmap_failure() -> Iterator[None]:
    """Re-raise a failure of the batched backward with the fix named."""
    try:
        yield
    except RuntimeError as error:
        raise RuntimeError(
            f"the batched (vmap) backward failed: {error}. Some operations have no batching "
            "rule; use the gradient method 'loop' (backward(..., method='loop'), or "
            "gradients.method=loop in a configuration)"
        ) from error
