"""Cross-stitch networks (Misra, Shrivastava, Gupta, Hebert; CVPR 2016)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.columns import Columns, StitchUnits, build_layers, mix_rows
from polytask.models.layers import TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.outputs import TaskOutputs, branch


@register("cross_stitch")
class CrossStitch(MultiTaskModel):
    """One column per task, mixed after every layer by a learnt cross-stitch unit:
    ``x~_t^k = sum_s alpha^k_{ts} h_s^k`` where ``h_s^k`` is column ``s``'s layer-``k`` output
    (Misra, Shrivastava, Gupta, Hebert: "Cross-stitch Networks for Multi-task Learning",
    CVPR 2016, eq. 1); task ``t``'s head reads ``x~_t^K``.

    Columns are built from sizes (``input_dim``, ``dims``: ``Linear -> act`` per size) or
    copied from any ``layers`` (for example convolutional blocks), re-initialised per column.
    A unit's alpha is ``T x T`` per layer (one scalar per pair of columns).

    Parameter partition: every column and unit below the top feed all tasks and are shared;
    row ``t`` of the top unit only feeds task ``t`` and is task ``t``'s, with its head. The
    ``features`` are the stacked top-layer outputs ``(T, B, ...)`` before the top unit.

    Shapes: input ``(B, ...)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width (columns built from sizes).
        dims: column layer sizes (``(64, 64)``).
        layers: a column's layers as modules instead (copied per task).
        feature_dim: output width of the last given layer, flattened (the heads' input).
        head_dims: hidden sizes of each head (``(32,)``).
            Or a factory ``(in_dim, out_dim) -> module``.
        init: ``"stitch"`` (``self_weight`` on the diagonal, the rest spread evenly) or
            ``"identity"`` (independent columns until the units learn to mix).
        self_weight: diagonal of the initial units (0.9, as in the paper).
        activation: activation of built columns and heads (``relu``).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int | None = None,
        dims: Sequence[int] = (64, 64),
        layers: Sequence[nn.Module] | None = None,
        feature_dim: int | None = None,
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
        width = feature_dim if layers is not None else dims[-1]
        if width is None:
            raise ValueError("given layers need feature_dim= (the last layer's output width)")
        T = len(self.task_names)
        self.columns = Columns(template, T)
        self.units = StitchUnits(len(template), T, init == "identity", self_weight)
        self.heads = towers(heads, int(width), head_dims, activation)

    def forward(self, inputs: Tensor) -> TaskOutputs:
        xs: list[Tensor] = [inputs] * len(self.task_names)
        for k in range(self.columns.depth - 1):
            xs = mix_rows(self.units.rows(k), self.columns.layer(k, xs))
        top = self.columns.layer(self.columns.depth - 1, xs)
        branches = branch(top, self.task_names)
        rows = self.units.rows(-1)
        predictions = {}
        for i, t in enumerate(self.task_names):
            (mixed,) = mix_rows([rows[i]], branches[t])
            predictions[t] = self.heads[t](mixed.flatten(1))
        return TaskOutputs(predictions, branches)

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.columns, *self.units.lower()]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.heads[task]]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from super().task_parameters(task)
        yield self.units.rows(-1)[self.task_names.index(task)]
