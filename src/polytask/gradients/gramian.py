"""The Gramian ``G = J J^T`` of the task Jacobian, accumulated block by block.

``G[s, t] = <g_s, g_t>`` is the inner product of the gradients of tasks ``s`` and ``t``. It is
the only thing most gradient methods need (MGDA, PCGrad, CAGrad, Nash-MTL, IMTL-G ...), and it
is ``T x T`` whatever the number of parameters: ``G = sum_b J_b J_b^T`` over the Jacobian
blocks ``J_b`` (one per shared tensor), so the ``T x P`` Jacobian is never concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def gramian(blocks: Sequence[Tensor]) -> Tensor:
    """``sum_b flat(J_b) flat(J_b)^T`` over blocks ``J_b`` of shape ``(T, ...)``.

    Computed in at least float32 (reduced-precision gradients under autocast are upcast).

    Returns:
        The symmetric positive semi-definite ``(T, T)`` Gramian.
    """
    if not blocks:
        raise ValueError("gramian needs at least one Jacobian block")
    total: Tensor | None = None
    for block in blocks:
        flat = block.reshape(block.shape[0], -1)
        if flat.dtype in (torch.float16, torch.bfloat16):
            flat = flat.float()
        part = row_products(flat, flat)
        total = part if total is None else total + part
    assert total is not None
    return (total + total.T) / 2


# On CPU, ``a @ b.T`` for a few rows of tens of thousands of columns runs far below the
# machine's memory bandwidth (T = 8, K = 131072: 0.8-1.0 ms on 2 threads); cutting the columns
# into chunks and taking one batched product per chunk runs 3-4x faster there (0.27 ms), and
# slower for many rows or short rows (torch 2.13, 2-core x86 machine, float32).
_CHUNK = 1024
_CHUNKED_ROWS = 12
_CHUNKED_COLUMNS = 32768


def row_products(a: Tensor, b: Tensor) -> Tensor:
    """All inner products of the rows of ``a`` and ``b``: ``a @ b.T``, ``(T, K) x (S, K) ->
    (T, S)``.

    On CPU with few rows (``T, S <= 12``) and long rows (``K >= 32768``) it is computed as
    a sum of ``K / 1024`` chunk products in one batched matmul, which is several times
    faster there than one matmul (and sums in smaller pieces); elsewhere it is ``a @ b.T``.
    """
    rows, columns = a.shape
    if (
        a.device.type != "cpu"
        or max(rows, b.shape[0]) > _CHUNKED_ROWS
        or columns < _CHUNKED_COLUMNS
    ):
        return a @ b.T
    chunks = columns // _CHUNK
    whole = chunks * _CHUNK
    left = a[:, :whole].reshape(rows, chunks, _CHUNK).transpose(0, 1)  # (chunks, T, c)
    right = b[:, :whole].reshape(b.shape[0], chunks, _CHUNK).permute(1, 2, 0)  # (chunks, c, S)
    products = torch.bmm(left, right).sum(dim=0)
    if whole < columns:
        products = products + a[:, whole:] @ b[:, whole:].T
    return products


def flatten_jacobian(blocks: Sequence[Tensor]) -> Tensor:
    """The full Jacobian ``(T, P)``: the flattened blocks side by side (Jacobian methods only)."""
    return torch.cat([b.reshape(b.shape[0], -1) for b in blocks], dim=1)


def split_direction(direction: Tensor, blocks: Sequence[Tensor]) -> list[Tensor]:
    """Cut a flat direction ``(P,)`` back into tensors shaped like the blocks' rows."""
    sizes = [b[0].numel() for b in blocks]
    return [part.view_as(b[0]) for part, b in zip(direction.split(sizes), blocks, strict=True)]
