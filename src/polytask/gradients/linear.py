"""The parameter-level Gramian of a trunk of linear layers without its Jacobian.

For a linear layer ``y = x W^T + b`` used once, with inputs ``x`` (``N x in``, one row per
sample or token) and task ``t``'s gradient with respect to its output ``D_t = dL_t/dy``
(``N x out``), task ``t``'s gradients are ``dL_t/dW = D_t^T x`` and ``dL_t/db = 1^T D_t``. Their
inner products, the layer's part of the Gramian, need neither:

    <dL_s/dW, dL_t/dW> = sum_{n,m} (x x^T)_{nm} (D_s D_t^T)_{nm} = <D_s, K D_t>,  K = x x^T

(the identity behind per-example gradient norms, Goodfellow 2015, "Efficient per-example
gradient computations"; here between tasks instead of between examples). Per layer this
costs ``N^2 in + T N^2 out + T^2 N out`` instead of ``T N in out`` for the weight gradients
plus ``T^2 in out`` for their Gramian; each layer takes the cheaper of the two (with many
tasks or wide layers and a batch smaller than the layer, the activation form wins). The
output gradients ``D_t`` come from one batched backward of the trunk *to the layer outputs*,
so no weight gradient is formed until the weights ``w`` are known; then the shared gradient
is ``(sum_t w_t D_t)^T x`` per layer, one product.

:class:`LinearTaps` records ``x`` and ``y`` of the layers during the forward pass;
:func:`polytask.backward` uses them (argument ``taps=``) when every shared parameter belongs
to a recorded layer used exactly once, and otherwise takes the general path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn

from polytask.gradients.gramian import row_products
from polytask.gradients.graph import walk


@dataclass
class Tap:
    """One call of a linear layer: its module, input rows ``(N, in)`` (detached) and output
    (in the graph)."""

    module: nn.Linear
    inputs: Tensor
    output: Tensor


class LinearTaps:
    """Records the input and output of every ``nn.Linear`` inside ``modules`` while active.

    Usage (the trainer does this at the parameter level)::

        taps = LinearTaps(model.shared_modules())
        with taps:
            out = model(x)
        polytask.backward(losses, balancer, features=out.features,
                          shared_params=model.shared_parameters(), taps=taps)

    Entering clears the previous record. The hooks cost a few microseconds per layer.
    When the records cannot give the Gramian (a shared parameter outside the recorded
    ``nn.Linear`` layers, such as a convolution's; a layer called twice; tied weights),
    the engine takes the exact Jacobian route, says so in ``result.gramian_from``, and
    warns once with the cause.

    Args:
        modules: modules to search for linear layers (the model's shared modules).
        warn_unused: warn (once) when the records cannot be used (the Trainer, which tries taps
            on every model, turns this off).
    """

    uncovered: str = ""
    """Why the last :meth:`covering` call found the records unusable (``""``: usable)."""

    def __init__(self, modules: Iterable[nn.Module], warn_unused: bool = True) -> None:
        found = (m for module in modules for m in module.modules())
        self.layers = [m for m in found if isinstance(m, nn.Linear)]
        # Given by a user, taps that cannot give the Gramian warn once (the slower exact
        # route runs instead); the Trainer's own, tried on every model, stay quiet.
        self.warn_unused = warn_unused
        self.records: list[Tap] = []
        self._handles: list[Any] = []

    def __enter__(self) -> LinearTaps:
        self.records = []
        self._handles = [layer.register_forward_hook(self._record) for layer in self.layers]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def clear(self) -> None:
        """Drop the records (they hold the layer outputs, and so the forward's graph)."""
        self.records = []

    def _record(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if torch.is_grad_enabled() and output.requires_grad:
            assert isinstance(module, nn.Linear)
            x = inputs[0].detach()
            self.records.append(Tap(module, x.reshape(-1, x.shape[-1]), output))

    def covering(
        self, base: Tensor, params: Sequence[Tensor], uses: dict[int, int] | None = None
    ) -> list[Tap] | None:
        """The records, when their parameters are exactly ``params`` (all trained) and each
        parameter is used once in the graph of ``base`` (no layer called twice, no weight
        read outside its layer); else ``None`` (:attr:`uncovered` then says why). ``uses``
        are ``walk(base).uses`` when the caller has already walked that graph."""
        self.uncovered = self._why_not(base, params, uses)
        return None if self.uncovered else self.records

    def _why_not(self, base: Tensor, params: Sequence[Tensor], uses: dict[int, int] | None) -> str:
        modules = [tap.module for tap in self.records]
        if not modules:
            return "no nn.Linear layer was recorded (run the forward pass inside `with taps:`)"
        if len({id(m) for m in modules}) != len(modules):
            return "a recorded nn.Linear layer was called more than once in the forward pass"
        owned = [p for m in modules for p in m.parameters()]
        if not all(p.requires_grad for p in owned):
            return "a recorded nn.Linear layer has frozen parameters"
        mine, shared = {id(p) for p in owned}, {id(p) for p in params}
        if not shared <= mine:
            return (
                f"{len(shared - mine)} shared parameter(s) belong to no recorded nn.Linear layer "
                "(only nn.Linear layers are tapped; convolutions, embeddings and others are not)"
            )
        if mine != shared:
            return "recorded nn.Linear layers hold parameters that are not in shared_params"
        uses = walk(base).uses if uses is None else uses
        if not all(uses.get(id(p)) == 1 for p in owned):
            return "a recorded weight is read more than once (tied or reused weights)"
        return ""


def _rows(tensor: Tensor) -> Tensor:
    """``(T, ..., out)`` -> ``(T, N, out)`` in at least float32."""
    flat = tensor.reshape(tensor.shape[0], -1, tensor.shape[-1])
    return flat.float() if flat.dtype in (torch.float16, torch.bfloat16) else flat


def output_gradients(base: Tensor, taps: Sequence[Tap], rows: Tensor) -> list[Tensor]:
    """Per-task gradients with respect to each recorded layer output, ``(T, N, out)`` each, by
    one batched backward of the trunk from ``base`` with the per-task feature gradients
    ``rows`` (``(T, *base.shape)``); no parameter gradient is computed."""
    grads = torch.autograd.grad(
        base,
        [tap.output for tap in taps],
        grad_outputs=rows,
        is_grads_batched=True,
        retain_graph=True,
        allow_unused=True,
    )
    T = rows.shape[0]
    return [
        _rows(tap.output.new_zeros((T, *tap.output.shape)) if g is None else g)
        for g, tap in zip(grads, taps, strict=True)
    ]


def layer_gramian(x: Tensor, deltas: Tensor, bias: bool) -> tuple[Tensor, Tensor | None]:
    """The Gramian ``(T, T)`` of one linear layer's per-task parameter gradients from its
    input rows ``x`` ``(N, in)`` and output gradients ``deltas`` ``(T, N, out)``: by the
    activation form ``<D_s, x x^T D_t>`` when ``N (in + T out) < T in out`` (its cost
    ``N^2 (in + T out)`` below the weight gradients' ``T N in out``), else from the explicit
    weight gradients ``D_t^T x``.

    Returns:
        The Gramian and, when the explicit form was used, the per-task weight gradients
        ``(T, out, in)`` (so the combined gradient is a weighted sum of them, not another
        product), else ``None``.
    """
    T, N, out = deltas.shape
    x = x.to(deltas.dtype)
    width = x.shape[1]
    flat = deltas.reshape(T, -1)
    blocks = None
    if N * (width + T * out) < T * width * out:
        kernel = x @ x.T  # (N, N)
        G = row_products(flat, torch.matmul(kernel, deltas).reshape(T, -1))
    else:
        blocks = torch.matmul(deltas.transpose(1, 2), x)  # (T, out, in)
        weights = blocks.reshape(T, -1)
        G = row_products(weights, weights)
    if bias:
        sums = deltas.sum(dim=1)
        G = G + sums @ sums.T
    return G, blocks


def taps_gramian(
    taps: Sequence[Tap], deltas: Sequence[Tensor]
) -> tuple[Tensor, list[Tensor | None]]:
    """The shared parameters' Gramian ``(T, T)``: the sum of :func:`layer_gramian` over
    the layers; with each layer's explicit weight gradients (or ``None``) for
    :func:`combined_gradients`."""
    total: Tensor | None = None
    blocks: list[Tensor | None] = []
    for tap, d in zip(taps, deltas, strict=True):
        part, block = layer_gramian(tap.inputs, d, tap.module.bias is not None)
        total = part if total is None else total + part
        blocks.append(block)
    assert total is not None
    return (total + total.T) / 2, blocks


def combined_gradients(
    taps: Sequence[Tap],
    deltas: Sequence[Tensor],
    weights: Tensor,
    blocks: Sequence[Tensor | None] | None = None,
) -> list[tuple[Tensor, Tensor]]:
    """``(parameter, gradient)`` pairs of ``sum_t w_t L_t`` for every recorded layer:
    ``(sum_t w_t D_t)^T x`` for the weight (``sum_t w_t J_t`` where the layer's per-task
    weight gradients ``J_t`` are given in ``blocks``) and ``1^T sum_t w_t D_t`` for the
    bias."""
    pairs = []
    blocks = [None] * len(taps) if blocks is None else blocks
    for tap, d, block in zip(taps, deltas, blocks, strict=True):
        weight, bias = tap.module.weight, tap.module.bias
        mixed = None
        if block is None or bias is not None:
            mixed = torch.tensordot(weights.to(d.dtype), d, dims=1)  # (N, out)
        if block is None:
            assert mixed is not None
            grad = mixed.T @ tap.inputs.to(mixed.dtype)
        else:
            grad = torch.tensordot(weights.to(block.dtype), block, dims=1)
        pairs.append((weight, grad.to(weight.dtype)))
        if bias is not None:
            assert mixed is not None
            pairs.append((bias, mixed.sum(dim=0).to(bias.dtype)))
    return pairs
