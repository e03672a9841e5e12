"""Sluice networks (Ruder, Bingel, Augenstein, Søgaard; AAAI 2019)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.columns import Columns, StitchUnits, build_layers, mix_rows
from polytask.models.layers import TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.models.sharing import share
from polytask.outputs import TaskOutputs


def _to_subspaces(stacked: Tensor, S: int) -> Tensor:
    """``(T, B, D)`` -> ``(T*S, B, D/S)``: each column's output split into ``S`` subspaces."""
    T, B, D = stacked.shape
    return stacked.reshape(T, B, S, D // S).permute(0, 2, 1, 3).reshape(T * S, B, D // S)


def _from_subspaces(parts: Sequence[Tensor], S: int) -> list[Tensor]:
    """Inverse of :func:`_to_subspaces` for a list of ``T*S`` tensors ``(B, D/S)``."""
    return [torch.cat(list(parts[i : i + S]), dim=1) for i in range(0, len(parts), S)]


@register("sluice")
class Sluice(MultiTaskModel):
    """A sluice network (Ruder, Bingel, Augenstein, Søgaard: "Latent Multi-Task Architecture
    Learning", AAAI 2019): one column per task; every layer's output is split into ``S``
    subspaces, and a learnt ``(T S) x (T S)`` matrix ``alpha`` mixes all subspaces of all
    columns after each layer (a cross-stitch unit over subspaces, their eq. 2). Task ``t``'s
    head reads ``sum_k beta_{t,k} h_{t,k}``, a learnt weighting of its column's layer outputs
    (their layer weighting / skip connections), and an orthogonality constraint
    ``lambda * sum_{t,k} ||G_{t,k,1}^T G_{t,k,2} / B||_F^2`` between the subspaces of every
    layer output (for ``S = 2``; every pair for more; ``G`` holds a batch of ``B`` outputs,
    and the division by ``B`` keeps ``lambda`` independent of the batch size) is the
    model's :meth:`penalty`.

    Layers must output vectors ``(B, D)`` of one width ``D`` divisible by ``S``.

    Parameter partition: columns and all but the top ``alpha`` are shared; task ``t`` owns the
    top ``alpha``'s rows of its subspaces, its ``beta_t`` and its head. ``features`` hold the
    mixed lower-layer outputs and the unmixed top outputs of all columns.

    Shapes: input ``(B, ...)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width (columns built from sizes).
        dims: column layer sizes, all equal (``(64, 64, 64)``).
        layers: a column's layers as modules instead (copied per task), each ``-> (B, D)``.
        feature_dim: ``D`` for given layers.
        subspaces: ``S`` (2, as in the paper).
        orthogonality: ``lambda`` of the subspace constraint (0: off; the paper tunes it. On
            one epoch of MultiMNIST from pixels, ``1e-3`` lowered accuracy by about 12
            points, so it is opt-in).
        head_dims: hidden sizes of each head (``(32,)``).
            Or a factory ``(in_dim, out_dim) -> module``.
        init: ``"stitch"`` or ``"identity"`` for ``alpha`` (see :class:`CrossStitch`).
        self_weight: diagonal of the initial ``alpha`` (0.9).
        activation: activation of built columns and heads (``relu``).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int | None = None,
        dims: Sequence[int] = (64, 64, 64),
        layers: Sequence[nn.Module] | None = None,
        feature_dim: int | None = None,
        subspaces: int = 2,
        orthogonality: float = 0.0,
        head_dims: TowerSpec = (32,),
        init: str = "stitch",
        self_weight: float = 0.9,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        if init not in ("stitch", "identity"):
            raise ValueError(f"init must be 'stitch' or 'identity', got {init!r}")
        template = build_layers(layers, input_dim, dims, activation)
        if layers is None and len(set(dims)) != 1:
            raise ValueError(f"sluice layer weighting needs equal layer sizes, got dims={dims}")
        width = feature_dim if layers is not None else dims[0]
        if width is None:
            raise ValueError("given layers need feature_dim= (their output width)")
        if subspaces < 1 or width % subspaces:
            raise ValueError(f"the width {width} must split into subspaces={subspaces} parts")
        if orthogonality < 0:
            raise ValueError(f"orthogonality must be >= 0, got {orthogonality}")
        T = len(self.task_names)
        self.subspaces, self.orthogonality = subspaces, float(orthogonality)
        self.columns = Columns(template, T)
        self.alphas = StitchUnits(len(template), T * subspaces, init == "identity", self_weight)
        K = len(template)
        self.betas = nn.ParameterDict({t: nn.Parameter(torch.full((K,), 1.0 / K)) for t in heads})
        self.heads = towers(heads, int(width), head_dims, activation)
        self._penalty: Tensor | None = None

    def forward(self, inputs: Tensor) -> TaskOutputs:
        names, S = self.task_names, self.subspaces
        xs: list[Tensor] = [inputs] * len(names)
        outputs: list[Tensor] = []
        penalty = inputs.new_zeros(())
        for k in range(self.columns.depth):
            stacked = self.columns.layer(k, xs)
            if stacked.dim() != 3:
                raise ValueError(
                    f"sluice layers must output (B, D); layer {k} gave {stacked.shape[1:]}"
                )
            spaces = _to_subspaces(stacked, S)
            if self.orthogonality > 0 and torch.is_grad_enabled():
                penalty = penalty + self._orthogonality(spaces)
            if k == self.columns.depth - 1:
                outputs.append(stacked)
                break
            xs = _from_subspaces(mix_rows(self.alphas.rows(k), spaces), S)
            outputs.append(torch.stack(xs))
        self._penalty = (
            self.orthogonality * penalty
            if self.orthogonality > 0 and torch.is_grad_enabled()
            else None
        )
        parts = {f"layer{k}": h for k, h in enumerate(outputs)}
        views, features = share(parts, names)
        top = self.alphas.rows(-1)
        predictions = {}
        for i, t in enumerate(names):
            last = _to_subspaces(views[t][f"layer{len(outputs) - 1}"], S)
            mine = _from_subspaces(mix_rows(top[i * S : (i + 1) * S], last), S)[0]
            layers = [views[t][f"layer{k}"][i] for k in range(len(outputs) - 1)] + [mine]
            mixed = torch.einsum("k,kbd->bd", self.betas[t], torch.stack(layers))
            predictions[t] = self.heads[t](mixed)
        return TaskOutputs(predictions, features)

    def _orthogonality(self, spaces: Tensor) -> Tensor:
        """``sum_t sum_{s<r} ||G_{t,s}^T G_{t,r} / B||_F^2`` for ``spaces`` ``(T*S, B, D/S)``
        (divided by the batch size ``B`` so that ``lambda`` does not depend on it)."""
        T, S = len(self.task_names), self.subspaces
        grouped = spaces.reshape(T, S, *spaces.shape[1:])
        total = spaces.new_zeros(())
        for s in range(S):
            for r in range(s + 1, S):
                batch = grouped.shape[2]
                cross = torch.einsum("tbi,tbj->tij", grouped[:, s], grouped[:, r]) / batch
                total = total + cross.pow(2).sum()
        return total

    def penalty(self) -> Tensor | None:
        """The orthogonality constraint of the latest training forward (``None`` if off)."""
        value, self._penalty = self._penalty, None
        return value

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.columns, *self.alphas.lower()]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.heads[task]]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from super().task_parameters(task)
        i, S = self.task_names.index(task), self.subspaces
        yield from self.alphas.rows(-1)[i * S : (i + 1) * S]
        yield self.betas[task]
