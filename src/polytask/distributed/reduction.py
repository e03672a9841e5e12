"""The exact reductions of a data-parallel step (:class:`ExactReduction`), installed into
the engine by :func:`polytask.distributed.enable`.

The mathematics (checked against one process on the whole batch in
``tests/test_distributed_exact.py``). Rank ``r`` holds ``n_t^r`` labelled elements of task
``t`` and its mean loss ``l_t^r``; the whole batch's loss is
``L_t = sum_r n_t^r l_t^r / N_t`` with ``N_t = sum_r n_t^r``. Write ``c_t^r = n_t^r / N_t``
and let each rank use the rescaled loss ``u_t^r = W c_t^r l_t^r`` (``W`` ranks; the factor
is a constant of the step). Then, with means over ranks:

- ``L_t = mean_r u_t^r``, and ``grad L_t = mean_r grad u_t^r``: averaging each rank's
  gradient of ``sum_t w_t u_t^r`` (what DDP does) is the whole batch's gradient of
  ``sum_t w_t L_t``, for any weights the ranks share;
- at the representation level each rank's features are its own rows, so the whole batch's
  feature Gramian is ``G = sum_r D_r G_r D_r`` (``D_r = diag(c^r)``, ``G_r`` from ``l^r``)
  ``= sum_r G_u^r / W^2`` with ``G_u^r`` the Gramian of the rescaled losses;
- at the parameter level the shared parameters are the same on every rank, so the whole
  batch's Jacobian is ``J = mean_r J_u^r`` and must be reduced before the Gramian is formed
  (``sum_r J_r J_r^T`` misses the cross-rank terms ``J_r J_s^T``).

A task with ``N_t = 0`` is absent from the step on every rank; one absent from this rank's
shard only has ``c_t^r = 0`` here (its loss is the constant 0). Losses given without counts
(a dict, a list, a tensor) are taken as means over equally many rows on every rank.

Collectives per step: one all-reduce of ``T + 1`` numbers (counts, a skip flag), one of
``T + T^2`` (losses, Gramian; ``T`` for a loss weighting; at the parameter level ``T``
losses and the ``T x P`` Jacobian instead) and one broadcast of the ``T`` weights (rank
0's, so a method that draws random numbers draws them once). A Jacobian method at the
representation level gathers every rank's per-sample rows instead (:meth:`gather_rows`).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from polytask.gradients.losses import LossList


class ExactReduction:
    """:class:`polytask.gradients.ranks.RankReduction` over the default process group."""

    def __init__(self) -> None:
        self.dist = torch.distributed

    @property
    def world(self) -> int:
        return int(self.dist.get_world_size())

    def prepare(self, items: LossList) -> LossList:
        """Global presence and skip, and the losses rescaled to ``u_t^r`` (module
        docstring)."""
        values = items.values
        T, device = len(values), values[0].device
        if items.counts is not None:
            counts = items.counts.detach().to(device=device, dtype=torch.float64)
        else:
            # present: all True for a dict, a list or a tensor (equal shards assumed)
            counts = torch.tensor(items.present, dtype=torch.float64, device=device)
        packet = torch.cat([counts, counts.new_tensor([float(items.skip)])])
        self.dist.all_reduce(packet)
        total = packet[:T]
        factor = torch.where(total > 0, self.world * counts / total.clamp_min(1.0), 0.0)
        flags = torch.cat([total > 0, packet[T:] > 0]).tolist()
        scaled = [v * f.to(v.dtype) for v, f in zip(values, factor.unbind(), strict=True)]
        return dataclasses.replace(items, values=scaled, present=[bool(f) for f in flags[:T]],
                                   skip=bool(flags[T]), counts=total)  # fmt: skip

    def weights_inputs(
        self, gramian: Tensor | None, losses: Tensor
    ) -> tuple[Tensor | None, Tensor]:
        """The whole batch's Gramian ``sum_r G_u^r / W^2`` and losses ``mean_r u^r``."""
        T, W = losses.numel(), self.world
        dtype = (
            losses.dtype if gramian is None else torch.promote_types(losses.dtype, gramian.dtype)
        )
        parts = [losses.reshape(-1).to(dtype)]
        if gramian is not None:
            parts.append(gramian.reshape(-1).to(dtype))
        packet = torch.cat(parts)
        self.dist.all_reduce(packet)
        mean_losses = (packet[:T] / W).to(losses.dtype)
        if gramian is None:
            return None, mean_losses
        return (packet[T:] / W**2).view(T, T).to(gramian.dtype), mean_losses

    def mean_blocks(self, blocks: list[Tensor]) -> list[Tensor]:
        """The whole batch's Jacobian blocks ``mean_r J_u^r`` (one all-reduce over a flat
        buffer per dtype, ``T x P`` numbers)."""
        out: list[Tensor | None] = [None] * len(blocks)
        by_dtype: dict[torch.dtype, list[int]] = {}
        for i, block in enumerate(blocks):
            by_dtype.setdefault(block.dtype, []).append(i)
        for index in by_dtype.values():
            parts = [blocks[i] for i in index]
            flat = torch.cat([p.reshape(-1) for p in parts])
            self.dist.all_reduce(flat)
            flat /= self.world
            for i, mean in zip(index, flat.split([p.numel() for p in parts]), strict=True):
                out[i] = mean.view_as(blocks[i])
        return [b for b in out if b is not None]

    def gather_rows(self, rows: Tensor) -> tuple[Tensor, slice]:
        """Every rank's per-sample rows ``(T, b_r, ...)``, in rank order, as the whole
        batch's: the gradient of ``L_t`` at rank ``r``'s sample ``i`` is
        ``(1 / W) d u_t^r / d z_i`` (module docstring). Two collectives: the ranks' row
        counts, then the rows (padded to the largest count)."""
        W = self.world
        count = torch.tensor([rows.shape[1]], device=rows.device)
        counts = [torch.zeros_like(count) for _ in range(W)]
        self.dist.all_gather(counts, count)
        sizes = [int(c) for c in torch.cat(counts).tolist()]
        padded = rows.new_zeros((rows.shape[0], max(sizes), *rows.shape[2:]))
        padded[:, : rows.shape[1]] = rows
        gathered = [torch.empty_like(padded) for _ in range(W)]
        self.dist.all_gather(gathered, padded.contiguous())
        whole = torch.cat([g[:, :n] for g, n in zip(gathered, sizes, strict=True)], dim=1) / W
        start = sum(sizes[: self.dist.get_rank()])
        return whole, slice(start, start + rows.shape[1])

    def same_weights(self, weights: Tensor) -> Tensor:
        """Rank 0's weights on every rank."""
        shared = weights.detach().clone().contiguous()
        self.dist.broadcast(shared, src=0)
        return shared
