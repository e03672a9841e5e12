"""MTAN: multi-task attention network (Liu, Johns, Davison; CVPR 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polytask.models.base import MultiTaskModel
from polytask.models.columns import build_layers
from polytask.models.layers import LeNetTrunk, TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.models.sharing import share
from polytask.outputs import TaskOutputs


def lenet_stages(trunk: LeNetTrunk) -> list[nn.Module]:
    """The three stages of :class:`~polytask.models.layers.LeNetTrunk` (two conv blocks and
    the fully connected layer), sharing its modules."""
    return [
        nn.Sequential(trunk.conv1, nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(trunk.conv2, trunk.drop, nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(nn.Flatten(), trunk.fc, nn.ReLU()),
    ]


def _attention(in_ch: int, out_ch: int, spatial: bool) -> nn.Module:
    """MTAN's attention block ``g``: two 1x1 convolutions (or linear maps) ending in a
    sigmoid mask of ``out_ch`` channels."""
    if spatial:
        return nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 1),
            nn.BatchNorm2d(out_ch),
            nn.Sigmoid(),
        )
    return nn.Sequential(
        nn.Linear(in_ch, out_ch), nn.ReLU(), nn.Linear(out_ch, out_ch), nn.Sigmoid()
    )


class _Carry(nn.Module):
    """MTAN's ``f``: brings the previous attended features to the next stage's channels and
    size (3x3 convolution and pooling between images, pooling and a linear map from images to
    vectors, a linear map between vectors)."""

    def __init__(self, prev: torch.Size, cur: torch.Size) -> None:
        super().__init__()
        self.size = tuple(cur[2:]) if len(cur) == 4 else None
        if len(prev) == 4 and len(cur) == 4:
            self.map: nn.Module = nn.Conv2d(prev[1], cur[1], 3, padding=1)
        elif len(prev) == 4:
            self.map = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev[1], cur[1])
            )
        elif len(cur) == 2:
            self.map = nn.Linear(prev[1], cur[1])
        else:
            raise ValueError("MTAN cannot carry attention from a vector stage to an image stage")

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.map(x))
        return F.adaptive_max_pool2d(y, self.size) if self.size is not None else y


@register("mtan")
class MTAN(MultiTaskModel):
    """Multi-task attention network (Liu, Johns, Davison: "End-to-End Multi-Task Learning with
    Attention", CVPR 2019, eq. 1): a shared trunk of stages ``p_1 .. p_J`` and, per task, soft
    attention masks at chosen stages,
    ``a_j^t = g_j^t([p_j ; f_j^t(a_{j-1}^t)]) * p_j`` (``a_1^t = g_1^t(p_1) * p_1``), with
    ``g`` two 1x1 convolutions ending in a sigmoid (linear maps for vector stages) and ``f``
    bringing the previous attended features to the stage's size. Task ``t``'s tower reads the
    last ``a^t``, flattened. Works on convolutional and MLP trunks alike.

    The trunk is given as stages (``stages=[module, ...]`` with ``input_shape=``, any
    backbone), built from sizes (``trunk="mlp"``: one stage per layer) or ``trunk="lenet"``
    (MultiMNIST's three LeNet stages). Each task owns its attention modules and tower (in the
    paper ``f`` is shared; here it is per task so that task parameters only reach their task).
    ``features`` are the attended stages' outputs, branched per task.

    Shapes: input ``(B, *input_shape)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width for ``trunk="mlp"``.
        trunk: ``"mlp"``, ``"lenet"`` or ``None`` with ``stages=``.
        trunk_dims: MLP stage sizes (``(64, 64)``).
        stages: the trunk's stages as modules.
        input_shape: shape of one input without the batch axis (needed with ``stages``).
        attention_stages: indices of the attended stages (default all; must include the last).
        head_dims: hidden sizes of each tower (``(32,)``).
            Or a factory ``(in_dim, out_dim) -> module``.
        activation: activation of MLP stages and towers (``relu``).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int | None = None,
        trunk: str | None = "mlp",
        trunk_dims: Sequence[int] = (64, 64),
        stages: Sequence[nn.Module] | None = None,
        input_shape: Sequence[int] | None = None,
        attention_stages: Sequence[int] | None = None,
        head_dims: TowerSpec = (32,),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        built, input_shape = self._stages(
            trunk, input_dim, trunk_dims, stages, input_shape, activation
        )
        self.stages = nn.ModuleList(built)
        J = len(built)
        chosen = sorted(set(range(J) if attention_stages is None else attention_stages))
        if not chosen or chosen[-1] != J - 1 or chosen[0] < 0:
            raise ValueError(
                f"attention_stages must be indices in 0..{J - 1} that include the last stage, "
                f"got {attention_stages}"
            )
        self.attended = chosen
        shapes = self._shapes(input_shape)
        self.attention = nn.ModuleDict()
        self.carry = nn.ModuleDict()
        for t in self.task_names:
            blocks, carries = nn.ModuleList(), nn.ModuleList()
            for n, j in enumerate(chosen):
                shape = shapes[j]
                extra = 0 if n == 0 else shape[1]
                blocks.append(_attention(shape[1] + extra, shape[1], len(shape) == 4))
                if n > 0:
                    carries.append(_Carry(shapes[chosen[n - 1]], shape))
            self.attention[t], self.carry[t] = blocks, carries
        out = shapes[-1]
        self.towers = towers(heads, int(torch.Size(out[1:]).numel()), head_dims, activation)

    @staticmethod
    def _stages(
        trunk: str | None,
        input_dim: int | None,
        dims: Sequence[int],
        stages: Sequence[nn.Module] | None,
        input_shape: Sequence[int] | None,
        act: str,
    ) -> tuple[list[nn.Module], Sequence[int]]:
        if stages is not None:
            if input_shape is None:
                raise ValueError("stages= needs input_shape= (one input without the batch axis)")
            return list(stages), input_shape
        if trunk == "lenet":
            return lenet_stages(LeNetTrunk()), (1, 28, 28)
        if trunk == "mlp":
            if input_dim is None:
                raise ValueError("trunk='mlp' needs input_dim=")
            return build_layers(None, input_dim, dims, act), (input_dim,)
        raise ValueError(f"trunk must be 'mlp', 'lenet' or None with stages=, got {trunk!r}")

    @torch.no_grad()
    def _shapes(self, input_shape: Sequence[int]) -> list[torch.Size]:
        """Each stage's output shape, from a forward of two zero inputs in eval mode."""
        was = self.training
        self.eval()
        x = torch.zeros(2, *input_shape)
        shapes = []
        for stage in self.stages:
            x = stage(x)
            if x.dim() not in (2, 4):
                raise ValueError(
                    f"MTAN stages must output (B, C) or (B, C, H, W), got {tuple(x.shape)}"
                )
            shapes.append(x.shape)
        self.train(was)
        return shapes

    def forward(self, inputs: Tensor) -> TaskOutputs:
        x, parts = inputs, {}
        for j, stage in enumerate(self.stages):
            x = stage(x)
            if j in self.attended:
                parts[f"stage{j}"] = x
        views, features = share(parts, self.task_names)
        predictions = {}
        for t in self.task_names:
            attended: Tensor | None = None
            blocks = cast(nn.ModuleList, self.attention[t])
            carries = cast(nn.ModuleList, self.carry[t])
            for n, j in enumerate(self.attended):
                p = views[t][f"stage{j}"]
                gate_in = p if attended is None else torch.cat([p, carries[n - 1](attended)], 1)
                attended = blocks[n](gate_in) * p
            assert attended is not None
            predictions[t] = self.towers[t](attended.flatten(1))
        return TaskOutputs(predictions, features)

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.stages]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.attention[task], self.carry[task], self.towers[task]]
