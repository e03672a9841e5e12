"""``polytask.backward``: one call that turns task losses into gradients, for any balancer.

Usage inside any training loop::

    out = model(x)
    losses = tasks.losses(out, y)
    polytask.backward(losses, balancer, features=out.features)   # or shared_params=...
    optimizer.step()

Dispatch on what the balancer needs:

- losses only: one backward of the balancer's objective (``sum_t w_t L_t``);
- the Gramian: per-task gradients at the chosen level -> ``G`` (``T x T``) -> weights ``w``
  -> the gradient of ``sum_t w_t L_t``, with heads and trunk each differentiated once (see
  :func:`backward` for how);
- the Jacobian: per-task gradients -> a direction ``d`` for the shared part, put in place of
  the shared gradient by a hook during one backward of ``sum_t h_t L_t`` (heads).

The level is the representation level when only ``features`` is given, and the parameter
level when ``shared_params`` is given (with ``features`` too, the shared-parameter Jacobian is
taken through the features, which is faster). Gradients are accumulated into ``.grad``
like ``Tensor.backward``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from polytask.gradients import ranks
from polytask.gradients.consumers import consumer_capture
from polytask.gradients.distributed_guard import reduction_for
from polytask.gradients.gramian import flatten_jacobian, gramian, split_direction
from polytask.gradients.graph import walk
from polytask.gradients.jacobian import (
    Features,
    Method,
    branch_base,
    branches_exclusive,
    check_chain,
    feature_jacobian,
    parameter_jacobian,
    trunk_jacobian,
)
from polytask.gradients.linear import (
    LinearTaps,
    combined_gradients,
    output_gradients,
    taps_gramian,
)
from polytask.gradients.losses import LossesLike, LossList, as_loss_list
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
        skipped: ``True`` when the step was a no-op: a non-finite loss (under
            ``on_nonfinite="skip"``), or no task with a label in the batch.
        present: per task, whether it took part in the step (had a label in the batch).
        path: how per-task gradients were taken at the representation level: ``branches``
            (one backward through polytask's per-task branches), ``consumers`` (one backward
            with the heads' readers of a plain features tensor hooked: a user's own model),
            ``per-task`` (one pass per task, exact for any graph) or ``vmap``; at the
            parameter level the same names for how the shared Jacobian's rows were reached;
            ``""`` where it does not apply.
        gramian_from: at the parameter level, where the Gramian came from: ``activations``
            (the recorded ``nn.Linear`` layers, :class:`~polytask.gradients.LinearTaps`)
            or ``jacobian`` (the shared parameters' per-task gradients); ``""`` elsewhere.
    """

    weights: Tensor | None
    gramian: Tensor | None
    level: Level | None
    skipped: bool = False
    present: list[bool] | None = None
    path: str = ""
    gramian_from: str = ""


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
    taps: LinearTaps | None = None,
) -> BackwardResult:
    """Accumulate into ``.grad`` the update that ``balancer`` makes of the task losses.

    For a Gramian method the result is always the gradient of ``sum_t w_t L_t``; it is
    obtained without differentiating anything twice:

    - representation level with per-task branches: one backward of ``sum_t L_t`` through the
      heads gives every task's feature gradient ``g_t`` and its head's parameter gradients;
      after the weights are known, head ``t``'s gradients are scaled by ``w_t`` and the trunk
      is differentiated once with ``sum_t w_t g_t``;
    - parameter level: the exact Jacobian of the shared parameters is already computed for the
      Gramian, so their gradient is ``J^T w``; one backward of ``sum_t w_t L_t`` restricted to
      the other parameters (found by walking the autograd graph) trains the heads.

    Args:
        losses: :class:`~polytask.tasks.TaskLosses` (from ``TaskSet.losses``), ``{task: loss}``,
            a sequence of scalar losses or a 1-D loss tensor.
        balancer: any balancer (``polytask.balancers``).
        features: the model's shared representation (``outputs.features``): a tensor
            ``(B, ...)`` or ``{task: branch}``. Alone, it selects the representation level.
        shared_params: the shared parameters (``model.shared_parameters()``); selects the
            parameter level (exact per-task gradients of the shared weights). With
            ``features`` as well, their Jacobian is taken through the features (faster); every
            shared parameter must then act on the losses only through the features.
        method: how per-task gradients are computed: ``auto``, ``loop`` (reference) or ``vmap``.
        retain_graph: keep the graph after the final backward.
        taps: the linear layers' inputs and outputs recorded during the forward
            (:class:`~polytask.gradients.linear.LinearTaps` over the shared modules). At the
            parameter level with per-task branches, when the shared parameters are exactly
            those layers' (each used once), the Gramian is computed from activations and
            output gradients without forming the Jacobian (same result, less work); otherwise
            they are ignored.

    Absent tasks: a task that :class:`~polytask.tasks.TaskLosses` marks absent (no labelled
    sample in the batch; ``TaskSet.losses`` finds this out) takes no part in the step. The
    balancer runs on the present tasks only, as if the task set had only those (its state
    for the absent ones untouched, :meth:`~polytask.balancers.Balancer.restricted`); absent
    tasks get weight 0 and their Gramian rows are 0 in the result. With no task present the
    step is skipped. Losses given as a dict, a sequence or a tensor are all present.

    Returns:
        :class:`BackwardResult` with the weights used (and the Gramian for Gramian methods).

    Raises:
        ValueError: the balancer cannot run at the chosen level, or its inputs are missing.
        BalancerError: the balancer returned non-finite weights or direction.

    Note:
        Gradients that the engine computes itself (shared parameters at the parameter level,
        heads at the representation level) are added to ``.grad`` directly or weighted
        there in place, so hooks registered with ``register_post_accumulate_grad_hook`` do
        not see their final values (they fire, if at all, with the unweighted gradients).
    """
    items = as_loss_list(losses)
    try:
        return _backward(items, balancer, features, shared_params, method, retain_graph, taps)
    finally:
        if items.unstacked is not None:
            items.unstacked.remove()


def _backward(
    items: LossList,
    balancer: BalancerProtocol,
    features: Features | None,
    shared_params: Iterable[Tensor] | None,
    method: Method,
    retain_graph: bool,
    taps: LinearTaps | None,
) -> BackwardResult:
    level = resolve_level(features, shared_params)
    balancer.check_level(level)
    reduction = reduction_for(balancer)
    if reduction is not None:
        items = reduction.prepare(items)
    balancer.bind(items.names, items.roles, items.prior_weights)
    if items.skip:
        return BackwardResult(None, None, level, skipped=True, present=items.present)
    params = None if shared_params is None else [p for p in shared_params if p.requires_grad]
    with ranks.stepping(reduction):
        if all(items.present):
            result = _step(items, balancer, level, features, params, method, retain_graph, taps)
            balancer.after_backward()
            return result
        index = [i for i, here in enumerate(items.present) if here]
        if not index:
            return BackwardResult(None, None, level, skipped=True, present=items.present)
        sub = items.subset(index)
        if isinstance(features, Mapping):
            features = {n: features[n] for n in sub.names}
        with balancer.restricted(index):
            result = _step(sub, balancer, level, features, params, method, retain_graph, taps)
        balancer.after_backward()
        return _widen(result, index, items.present)


def _widen(result: BackwardResult, index: list[int], present: list[bool]) -> BackwardResult:
    """The result of a step on the present tasks, in the full task order (absent tasks:
    weight 0, Gramian rows 0 - an absent task's loss is the constant 0)."""
    T = len(present)
    weights = gramian = None
    if result.weights is not None:
        rows = torch.as_tensor(index, device=result.weights.device)
        weights = result.weights.new_zeros(T).index_copy_(0, rows, result.weights)
    if result.gramian is not None:
        rows = torch.as_tensor(index, device=result.gramian.device)
        gramian = result.gramian.new_zeros(T, T)
        gramian[rows[:, None], rows[None, :]] = result.gramian
    return dataclasses.replace(result, weights=weights, gramian=gramian, present=present)


def _step(
    items: LossList,
    balancer: BalancerProtocol,
    level: Level | None,
    features: Features | None,
    params: list[Tensor] | None,
    method: Method,
    retain_graph: bool,
    taps: LinearTaps | None,
) -> BackwardResult:
    """One step of ``balancer`` on the tasks of ``items`` (all present)."""
    name = type(balancer).__name__
    vector = items.stack()

    if balancer.needs == "losses":
        reduction = ranks.active()
        if "constant_weights" in getattr(balancer, "properties", ()):
            reduction = None  # weights that read no loss: nothing to agree on across ranks
        losses = vector.detach()
        if reduction is not None:
            losses = reduction.weights_inputs(None, losses)[1]
        weights = balancer.loss_weights(losses).detach()
        if reduction is not None:
            weights = reduction.same_weights(weights)
        _check_finite(name, weights, "weights")
        balancer.objective(vector, weights).backward(retain_graph=retain_graph)
        return BackwardResult(weights, None, level)

    if items.unstacked is not None:
        items.unstacked.warn_if_slow()  # a loss tensor the engine cannot take apart
    starts = items.unstacked.sources() if items.unstacked is not None else None
    if balancer.needs == "gramian":
        if level == "representation":
            assert features is not None
            return _representation_gramian(
                items.values, items.names, vector, balancer, features, method, retain_graph,
                starts,
            )  # fmt: skip
        assert params is not None
        return _parameter_gramian(
            items.values, items.names, vector, balancer, params, features, method, retain_graph,
            taps, starts,
        )  # fmt: skip
    if balancer.needs == "jacobian":
        assert level is not None
        return _jacobian(
            items.values,
            items.names,
            vector,
            balancer,
            level,
            features,
            params,
            method,
            retain_graph,
        )
    raise TypeError(
        f"{name}.needs must be 'losses', 'gramian' or 'jacobian', not {balancer.needs!r}"
    )


def _accumulate(leaf: Tensor, grad: Tensor) -> None:
    """``leaf.grad += grad`` (or ``= grad``), as autograd's accumulation would."""
    grad = grad.to(leaf.dtype)
    if leaf.grad is None:
        leaf.grad = grad.contiguous()
    else:
        leaf.grad.add_(grad)


def _through_heads(
    vector: Tensor, branches: Sequence[Tensor], plan: Sequence[Sequence[Tensor]]
) -> tuple[Tensor, list[Tensor | None] | None]:
    """One backward of ``sum_t L_t`` through the heads only: every task's gradient with
    respect to its branch (``(T, B, ...)``, branch ``t`` reaches only head ``t``) and the heads'
    unweighted parameter gradients. The graph is retained.

    When no head leaf has a gradient yet (the usual step after ``zero_grad``), the heads'
    gradients are accumulated straight into ``.grad`` (autograd's own buffers, scaled in
    place later) and ``None`` is returned for them; otherwise they come back in ``plan``
    order, to be added to the existing ``.grad``."""
    leaves = [leaf for task_leaves in plan for leaf in task_leaves]
    T = len(branches)
    if all(leaf.grad is None for leaf in leaves):
        torch.autograd.backward(vector.sum(), inputs=[*branches, *leaves], retain_graph=True)
        found: Sequence[Tensor | None] = [b.grad for b in branches]
        for b in branches:
            b.grad = None
        head_grads: list[Tensor | None] | None = None
    else:
        grads = torch.autograd.grad(
            vector.sum(), [*branches, *leaves], retain_graph=True, allow_unused=True
        )
        found, head_grads = grads[:T], list(grads[T:])
    rows = torch.stack(
        [torch.zeros_like(b) if g is None else g for g, b in zip(found, branches, strict=True)]
    )
    return rows, head_grads


@contextmanager
def _heads_pending(
    plan: Sequence[Sequence[Tensor]], grads: Sequence[Tensor | None] | None
) -> Iterator[None]:
    """Until the heads are weighted: on an error (a solver failing, non-finite weights), take
    back the unweighted head gradients that :func:`_through_heads` left in ``.grad`` (they
    were ``None`` before), so a failed call leaves every gradient as it found it."""
    try:
        yield
    except BaseException:
        if grads is None:
            for task_leaves in plan:
                for leaf in task_leaves:
                    leaf.grad = None
        raise


def _scale_heads(
    plan: Sequence[Sequence[Tensor]], grads: Sequence[Tensor | None] | None, heads: Tensor
) -> None:
    """Weight task ``t``'s head gradients by ``heads[t]``: in place in ``.grad`` when
    :func:`_through_heads` put them there (``grads is None``), else added to ``.grad`` from
    ``grads``. One foreach call; ``heads`` stays on its device."""
    targets: list[Tensor] = []
    found: list[Tensor] = []
    scales: list[Tensor] = []
    offset = 0
    for scale, task_leaves in zip(heads.unbind(), plan, strict=True):
        for i, leaf in enumerate(task_leaves):
            grad = leaf.grad if grads is None else grads[offset + i]
            if grad is None:
                continue
            if grads is not None and leaf.grad is None:
                leaf.grad = torch.zeros_like(leaf)
            assert leaf.grad is not None
            targets.append(leaf.grad)
            found.append(grad)
            scales.append(scale if scale.dtype == grad.dtype else scale.to(grad.dtype))
        offset += len(task_leaves)
    if not targets:
        return
    if grads is None:
        torch._foreach_mul_(targets, scales)
    else:
        torch._foreach_addcmul_(targets, found, scales)


def _combine_into(params: Sequence[Tensor], blocks: Sequence[Tensor], weights: Tensor) -> None:
    """Add ``J^T w`` to the shared parameters' gradients, block by block."""
    for param, block in zip(params, blocks, strict=True):
        _accumulate(param, torch.tensordot(weights.to(block.dtype), block, dims=1))


def _weights(balancer: BalancerProtocol, G: Tensor, vector: Tensor) -> tuple[Tensor, Tensor]:
    """The balancer's weights and the Gramian they came from: on several ranks, the whole
    batch's Gramian and losses (:mod:`polytask.gradients.ranks`), the same weights on all."""
    losses = vector.detach()
    reduction = ranks.active()
    if reduction is not None:
        global_G, losses = reduction.weights_inputs(G, losses)
        assert global_G is not None
        G = global_G
    weights = balancer.gramian_weights(G, losses).detach()
    if reduction is not None:
        weights = reduction.same_weights(weights)
    _check_finite(type(balancer).__name__, weights, "weights")
    return weights, G


def _head_leaves(
    losses: Sequence[Tensor], branches: Sequence[Tensor], base: Tensor
) -> list[list[Tensor]] | None:
    """Per task, its head's leaves, when every loss reaches the features only through its
    branch and no leaf serves two tasks; ``None`` otherwise (the generic path is then used)."""
    plan = branches_exclusive(losses, branches, base)
    return plan if plan is not None and _separate_heads(plan) else None


def _separate_heads(plan: Sequence[Sequence[Tensor]]) -> bool:
    """Whether no leaf tensor appears in two tasks' heads."""
    owner: set[int] = set()
    for task_leaves in plan:
        ids = {id(leaf) for leaf in task_leaves}
        if ids & owner:
            return False
        owner |= ids
    return True


def _representation_gramian(
    losses: Sequence[Tensor],
    names: Sequence[str],
    vector: Tensor,
    balancer: BalancerProtocol,
    features: Features,
    method: Method,
    retain_graph: bool,
    starts: Sequence[Any] | None = None,
) -> BackwardResult:
    plan = None
    capture = None
    # On several ranks, the one-backward paths are left out: their first backward (through
    # the heads into .grad) would hand DDP's gradient hooks the heads' unweighted gradients.
    # The per-task path takes the rows with autograd.grad and ends in one ordinary backward.
    one_rank = ranks.active() is None
    if one_rank and isinstance(features, Mapping) and method != "loop":
        base = branch_base(features, names)
        branches = [features[n] for n in names]
        if base.requires_grad:
            plan = _head_leaves(losses, branches, base)
    elif one_rank and isinstance(features, Tensor) and method == "auto" and features.requires_grad:
        # A user's own model: heads read one plain tensor; their consumers of it are hooked.
        capture = consumer_capture(losses, features, starts)
        if capture is not None and _separate_heads(capture.heads):
            base, plan = features, capture.heads
    if plan is None:
        rows = feature_jacobian(losses, names, features, method)
        G = gramian([rows])
        weights, G = _weights(balancer, G, vector)
        heads = balancer.head_task_weights(weights).detach()
        if heads is weights:
            (weights.to(vector.dtype) * vector).sum().backward(retain_graph=retain_graph)
        else:
            # Heads and trunk weighted differently: the trunk's gradient at the features is
            # put in place by a hook during the heads' backward.
            base = features if isinstance(features, Tensor) else branch_base(features, names)
            trunk = torch.tensordot(weights.to(rows.dtype), rows, dims=1).to(base.dtype)
            handle = base.register_hook(lambda _g: trunk)
            try:
                (heads.to(vector.dtype) * vector).sum().backward(retain_graph=retain_graph)
            finally:
                handle.remove()
        path = "vmap" if method == "vmap" else "per-task"
        return BackwardResult(weights, G, "representation", path=path)

    if capture is not None:
        rows, head_grads = capture.through_heads(vector)
    else:
        rows, head_grads = _through_heads(vector, branches, plan)
    with _heads_pending(plan, head_grads):
        G = gramian([rows])
        weights, G = _weights(balancer, G, vector)
        heads = balancer.head_task_weights(weights).detach()
    _scale_heads(plan, head_grads, heads)
    direction = torch.tensordot(weights.to(rows.dtype), rows, dims=1)
    torch.autograd.backward(base, grad_tensors=direction.to(base.dtype), retain_graph=retain_graph)
    path = "consumers" if capture is not None else "branches"
    return BackwardResult(weights, G, "representation", path=path)


def _parameter_gramian(
    losses: Sequence[Tensor],
    names: Sequence[str],
    vector: Tensor,
    balancer: BalancerProtocol,
    params: list[Tensor],
    features: Features | None,
    method: Method,
    retain_graph: bool,
    taps: LinearTaps | None = None,
    starts: Sequence[Any] | None = None,
) -> BackwardResult:
    reduction = ranks.active()
    if reduction is not None:
        if taps is not None:
            _warn_taps_unused(taps, SEVERAL_RANKS)
        # The whole batch's Jacobian J = mean_r J_r (one all-reduce of T x P), its Gramian
        # and the weights w; then one ordinary backward of sum_t h_t u_t (h: the heads'
        # weights), whose average over ranks is J^T h at the shared parameters, and
        # J^T (w - h) added to the shared gradients (the same on every rank), so the
        # average is J^T w. One ordinary backward keeps DDP's gradient hooks whole.
        blocks = reduction.mean_blocks(parameter_jacobian(losses, names, params, features, method))
        G = gramian(blocks)
        _, whole = reduction.weights_inputs(None, vector.detach())
        weights = reduction.same_weights(balancer.gramian_weights(G, whole).detach())
        _check_finite(type(balancer).__name__, weights, "weights")
        heads = balancer.head_task_weights(weights).detach()
        (heads.to(vector.dtype) * vector).sum().backward(retain_graph=retain_graph)
        if heads is not weights:
            _combine_into(params, blocks, weights - heads.to(weights.dtype))
        path = "vmap" if method == "vmap" else "per-task"
        return BackwardResult(weights, G, "parameter", path=path, gramian_from="jacobian")
    fast = _parameter_fast_path(
        losses, names, vector, balancer, params, features, method, retain_graph, taps, starts
    )
    if taps is not None and (fast is None or fast.gramian_from != "activations"):
        general = fast is None or not taps.uncovered
        _warn_taps_unused(taps, EXACT_PASSES if general else taps.uncovered)
    if fast is not None:
        return fast
    blocks = parameter_jacobian(losses, names, params, features, method)
    G = gramian(blocks)
    weights, G = _weights(balancer, G, vector)
    _combine_into(params, blocks, weights)
    shared = {id(p) for p in params}
    others = [leaf for leaf in walk(vector).leaves if id(leaf) not in shared]
    if others:
        heads = balancer.head_task_weights(weights).detach()
        torch.autograd.backward(
            (heads.to(vector.dtype) * vector).sum(), inputs=others, retain_graph=retain_graph
        )
    path = "vmap" if method == "vmap" else "per-task"
    return BackwardResult(weights, G, "parameter", path=path, gramian_from="jacobian")


EXACT_PASSES = (
    "the graph needs exact per-task passes (a loss reads the features other than through its "
    "head, or heads share an autograd node)"
)
SEVERAL_RANKS = (
    "on several ranks the Gramian needs the whole batch's Jacobian, and the layer-tap "
    "Gramian pairs the samples of one rank only"
)


def _warn_taps_unused(taps: LinearTaps, reason: str) -> None:
    """Say once per :class:`LinearTaps` why its records could not give the Gramian (the
    exact Jacobian route ran instead, slower): ``reason``."""
    if not taps.warn_unused:
        return
    taps.warn_unused = False  # once per LinearTaps
    warnings.warn(
        f"taps= given but not used: {reason}. The Gramian came from the shared parameters' "
        "exact per-task gradients (result.gramian_from == 'jacobian'), which is slower",
        RuntimeWarning,
        stacklevel=4,
    )


def _parameter_fast_path(
    losses: Sequence[Tensor],
    names: Sequence[str],
    vector: Tensor,
    balancer: BalancerProtocol,
    params: list[Tensor],
    features: Features | None,
    method: Method,
    retain_graph: bool,
    taps: LinearTaps | None = None,
    starts: Sequence[Any] | None = None,
) -> BackwardResult | None:
    """Through per-task branches (or, for a plain features tensor, the hooked readers of it,
    :mod:`polytask.gradients.consumers`) when the trunk's leaves are exactly the shared
    parameters:
    one backward through the heads gives the feature gradients and the heads' parameter
    gradients, the trunk's VJP gives the shared Jacobian (or, with ``taps`` covering the
    shared parameters, the layers' output gradients and the Gramian from activations), and
    nothing is differentiated twice. ``None`` when that does not apply."""
    if features is None or method == "loop":
        return None
    capture = None
    if isinstance(features, Mapping):
        base, plan = check_chain(losses, names, features, params)
        if plan is None:  # a loss reads the features other than through its own branch
            return None
        branches = [features[n] for n in names]
    else:  # a user's own model: the heads' readers of the plain features are hooked
        if method != "auto" or not features.requires_grad:
            return None
        capture = consumer_capture(losses, features, starts)
        if capture is None:
            return None
        base, plan = features, capture.heads
    trunk = walk(base)
    shared = {id(p) for p in params}
    if (
        not _separate_heads(plan)
        or any(id(leaf) not in shared for leaf in trunk.leaves)
        or any(id(leaf) in shared for leaves in plan for leaf in leaves)
    ):
        return None
    if capture is not None:
        rows, head_grads = capture.through_heads(vector)
    else:
        rows, head_grads = _through_heads(vector, branches, plan)
    records = None if taps is None else taps.covering(base, params, trunk.uses)
    with _heads_pending(plan, head_grads):
        if records is not None:
            deltas = output_gradients(base, records, rows)
            G, explicit = taps_gramian(records, deltas)
        else:
            blocks = trunk_jacobian(base, params, rows, method)
            G = gramian(blocks)
        weights, G = _weights(balancer, G, vector)
        heads = balancer.head_task_weights(weights).detach()
    if records is not None:
        for param, grad in combined_gradients(records, deltas, weights, explicit):
            _accumulate(param, grad)
    else:
        _combine_into(params, blocks, weights)
    _scale_heads(plan, head_grads, heads)
    path = "consumers" if capture is not None else "branches"
    source = "activations" if records is not None else "jacobian"
    return BackwardResult(weights, G, "parameter", path=path, gramian_from=source)


def _jacobian(
    losses: Sequence[Tensor],
    names: Sequence[str],
    vector: Tensor,
    balancer: BalancerProtocol,
    level: Level,
    features: Features | None,
    params: list[Tensor] | None,
    method: Method,
    retain_graph: bool,
) -> BackwardResult:
    reduction = ranks.active()
    if level == "representation":
        assert features is not None
        blocks = [feature_jacobian(losses, names, features, method)]
        targets = [features if isinstance(features, Tensor) else branch_base(features, names)]
    else:
        assert params is not None
        blocks = parameter_jacobian(losses, names, params, features, method)
        targets = params
        if reduction is not None:  # the whole batch's Jacobian, the same on every rank
            blocks = reduction.mean_blocks(blocks)
    if reduction is not None and level == "representation":
        # The whole batch's per-sample rows (every rank's, in rank order), the direction
        # over all of them, and this rank's rows of it (times W: DDP or
        # average_gradients divide the ranks' sum by W).
        rows, mine = reduction.gather_rows(blocks[0])
        direction = balancer.aggregate(flatten_jacobian([rows]))
        _check_finite(type(balancer).__name__, direction, "direction")
        parts = [direction.view_as(rows[0])[mine] * reduction.world]
    else:
        direction = balancer.aggregate(flatten_jacobian(blocks))
        _check_finite(type(balancer).__name__, direction, "direction")
        parts = split_direction(direction, blocks)
    # The hooks put the direction in place of the shared gradient during one backward that
    # also trains the heads on sum_t h_t L_t.
    handles = [
        t.register_hook(lambda g, d=d: d.to(g.dtype)) for t, d in zip(targets, parts, strict=True)
    ]
    try:
        head = balancer.head_weights(vector.detach()).detach()
        (head * vector).sum().backward(retain_graph=retain_graph)
    finally:
        for handle in handles:
            handle.remove()
    return BackwardResult(head, None, level)
