"""Shared bottom (hard parameter sharing): one trunk, one tower per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.layers import LeNetTrunk, TowerSpec, check_heads, mlp, towers
from polytask.models.registry import register
from polytask.outputs import TaskOutputs, branch


@register("shared_bottom")
class SharedBottom(MultiTaskModel):
    """Hard parameter sharing (Caruana 1997): ``y_t = tower_t(trunk(x))``.

    The trunk is either given as a module (any backbone: ``trunk=``, with ``feature_dim=``) or
    built from sizes: ``trunk="mlp"`` (an MLP ``input_dim -> trunk_dims``) or ``trunk="lenet"``
    (:class:`~polytask.models.layers.LeNetTrunk`, for MultiMNIST). Each task's tower is an MLP
    ``feature_dim -> head_dims -> out_dim``. The towers read per-task branches of the trunk's
    output (:func:`polytask.branch`), so gradient methods get every task's feature gradient
    from one backward.

    Shapes: input ``(B, input_dim)`` (or images for a convolutional trunk) ->
    ``predictions[t]`` ``(B, out_dim_t)``, ``features`` ``(B, feature_dim)``.

    Args:
        heads: ``{task: output size}`` (1 for a binary or scalar task, ``C`` for ``C`` classes).
        input_dim: input width for ``trunk="mlp"``.
        trunk: ``"mlp"`` (default), ``"lenet"`` or an ``nn.Module`` mapping inputs to
            ``(B, feature_dim)``.
        trunk_dims: hidden sizes of the MLP trunk (default ``(64, 64)``); its last size is the
            feature size. ``()``: no trunk, the towers read the input (with ``head_dims=()``
            a linear model per task, nothing shared).
        feature_dim: feature size of a given trunk module, or of ``"lenet"`` (default 50).
        head_dims: hidden sizes of every tower (default ``(32,)``; ``()`` for a linear head).
            Or a factory ``(in_dim, out_dim) -> module``.
        activation: activation of trunk and towers (``relu``).
        dropout: dropout after each hidden layer of the MLP trunk and towers (0).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int | None = None,
        trunk: str | nn.Module = "mlp",
        trunk_dims: Sequence[int] = (64, 64),
        feature_dim: int | None = None,
        head_dims: TowerSpec = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        if isinstance(trunk, nn.Module):
            if feature_dim is None:
                raise ValueError("a trunk module needs feature_dim= (its output width)")
            self.trunk = trunk
        elif trunk == "mlp":
            if input_dim is None:
                raise ValueError("trunk='mlp' needs input_dim=")
            # No layer: the towers read the input itself (with head_dims=(): a linear model
            # per task, nothing shared).
            self.trunk = (
                mlp(input_dim, trunk_dims, act=activation, dropout=dropout)
                if trunk_dims
                else nn.Identity()
            )
            feature_dim = trunk_dims[-1] if trunk_dims else input_dim
        elif trunk == "lenet":
            lenet = LeNetTrunk(feature_dim=feature_dim or 50)
            self.trunk = lenet
            feature_dim = lenet.feature_dim
        else:
            raise ValueError(f"trunk must be 'mlp', 'lenet' or an nn.Module, got {trunk!r}")
        self.feature_dim = int(feature_dim)
        self.towers = towers(heads, self.feature_dim, head_dims, activation, dropout)

    def forward(self, inputs: Tensor) -> TaskOutputs:
        features = self.trunk(inputs)
        branches = branch(features, self.task_names)
        predictions = {name: self.towers[name](branches[name]) for name in self.task_names}
        return TaskOutputs(predictions, branches)

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.trunk]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.towers[task]]
