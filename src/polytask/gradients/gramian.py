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
        part = flat @ flat.T
        total = part if total is None else total + part
    assert total is not None
    return (total + total.T) / 2


def flatten_jacobian(blocks: Sequence[Tensor]) -> Tensor:
    """The full Jacobian ``(T, P)``: the flattened blocks side by side (Jacobian methods only)."""
    return torch.cat([b.reshape(b.shape[0], -1) for b in blocks], dim=1)


def split_direction(direction: Tensor, blocks: Sequence[Tensor]) -> list[Tensor]:
    """Cut a flat direction ``(P,)`` back into tensors shaped like the blocks' rows."""
    sizes = [b[0].numel() for b in blocks]
    return [part.view_as(b[0]) for part, b in zip(direction.split(sizes), blocks, strict=True)]
