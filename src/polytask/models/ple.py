"""PLE: progressive layered extraction (Tang, Liu, Zhao, Gong; RecSys 2020)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import cast

import torch
from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.experts import Experts, Gate, mix
from polytask.models.layers import TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.models.sharing import share
from polytask.outputs import TaskOutputs

ExpertFactory = Callable[[int], nn.Module]
"""Builds one expert for inputs of the given width."""


class _Level(nn.Module):
    """One extraction level: experts per task, shared experts, a gate per task and (below the
    top level) a shared gate."""

    def __init__(
        self,
        tasks: Sequence[str],
        in_dim: int,
        task_experts: int,
        shared_experts: int,
        dims: Sequence[int],
        act: str,
        dropout: float,
        shared_gate: bool,
        factory: ExpertFactory | None,
        out_dim: int | None,
    ) -> None:
        super().__init__()

        def group(n: int) -> Experts:
            given = [factory(in_dim) for _ in range(n)] if factory is not None else None
            return Experts(n, in_dim, dims, act, dropout, given, out_dim)

        self.task_experts = nn.ModuleDict({t: group(task_experts) for t in tasks})
        self.shared_experts = group(shared_experts)
        self.gates = nn.ModuleDict({t: Gate(in_dim, task_experts + shared_experts) for t in tasks})
        self.shared_gate = (
            Gate(in_dim, len(tasks) * task_experts + shared_experts) if shared_gate else None
        )


@register("ple")
class PLE(MultiTaskModel):
    """Progressive layered extraction (Tang, Liu, Zhao, Gong: "Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys
    2020, eq. 2-6).

    Each extraction level ``l`` has ``task_experts`` experts per task and ``shared_experts``
    shared ones. Task ``t``'s gate mixes its own and the shared experts,
    ``h_t^l = sum g_t^l(h_t^{l-1}) [E_t^l(h_t^{l-1}), E_s^l(h_s^{l-1})]``; below the top level a
    shared gate mixes every expert into ``h_s^l``. Level 0 is the input for all. The top level
    has no shared gate; ``y_t = tower_t(h_t^L)``. With ``levels=1`` this is CGC (see
    :class:`~polytask.models.cgc.CGC`). Gate weights are in
    ``outputs.extras["gates/<task>"]`` (top level) and ``"gates/<level>/<task>"`` (all levels).

    Parameter partition: below the top level every parameter feeds the shared gate's path and
    so every task (task-specific experts included); those levels, and the top level's shared
    experts, are shared. Task ``t`` owns its top-level experts and gate and its tower. The
    ``features`` are the top level's shared expert outputs and every task's level-``L-1``
    output (or the input when it carries gradient), branched per task.

    Shapes: input ``(B, input_dim)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width.
        levels: number of extraction levels (2).
        task_experts: experts per task per level (1).
        shared_experts: shared experts per level (1).
        expert_dims: hidden sizes of each MLP expert; the last is the expert output
            (``(64,)``).
        experts: a factory ``in_dim -> module`` building each expert instead (any network
            mapping ``(B, in_dim)`` to ``(B, expert_dim)``; level 1 gets the input width,
            later levels ``expert_dim``).
        expert_dim: output width of the experts a factory builds.
        tower_dims: hidden sizes of each task tower (``(32,)``).
            Or a factory ``(in_dim, out_dim) -> module``.
        activation: activation in experts and towers (``relu``).
        dropout: dropout after each hidden layer (0).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int,
        levels: int = 2,
        task_experts: int = 1,
        shared_experts: int = 1,
        expert_dims: Sequence[int] = (64,),
        experts: ExpertFactory | None = None,
        expert_dim: int | None = None,
        tower_dims: TowerSpec = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if task_experts < 1 or shared_experts < 1:
            raise ValueError("task_experts and shared_experts must be >= 1")
        if experts is not None and expert_dim is None:
            raise ValueError("an expert factory needs expert_dim= (the experts' output width)")
        if not expert_dims and experts is None:
            raise ValueError("expert_dims must name at least one layer size")
        width = int(expert_dim if experts is not None else expert_dims[-1])  # type: ignore[arg-type]
        widths = [input_dim] + [width] * (levels - 1)
        self.levels = nn.ModuleList(
            _Level(
                self.task_names,
                width,
                task_experts,
                shared_experts,
                expert_dims,
                activation,
                dropout,
                shared_gate=index < levels - 1,
                factory=experts,
                out_dim=expert_dim,
            )
            for index, width in enumerate(widths)
        )
        self.towers = towers(heads, width, tower_dims, activation, dropout)

    def forward(self, inputs: Tensor) -> TaskOutputs:
        names = self.task_names
        task_in = dict.fromkeys(names, inputs)
        shared_in = inputs
        extras: dict[str, Tensor] = {}
        *lower, top = self._levels()
        for index, level in enumerate(lower):
            own = {t: level.task_experts[t](task_in[t]) for t in names}
            shared = level.shared_experts(shared_in)
            for t in names:
                weights = level.gates[t](task_in[t])
                extras[f"gates/{index}/{t}"] = weights.detach()
                task_in[t] = mix(weights, torch.cat([own[t], shared], dim=1))
            assert level.shared_gate is not None
            everything = torch.cat([*own.values(), shared], dim=1)
            shared_in = mix(level.shared_gate(shared_in), everything)
        if lower:
            parts = {
                "shared": top.shared_experts(shared_in),
                **{f"in/{t}": task_in[t] for t in names},
            }
        else:
            parts = {"shared": top.shared_experts(inputs), "input": inputs}
        views, features = share(parts, names)
        predictions = {}
        for t in names:
            x = views[t][f"in/{t}"] if lower else views[t]["input"]
            weights = top.gates[t](x)
            extras[f"gates/{len(lower)}/{t}"] = extras[f"gates/{t}"] = weights.detach()
            experts = torch.cat([top.task_experts[t](x), views[t]["shared"]], dim=1)
            predictions[t] = self.towers[t](mix(weights, experts))
        return TaskOutputs(predictions, features, extras)

    def _levels(self) -> list[_Level]:
        return cast(list[_Level], list(self.levels))

    def shared_modules(self) -> Sequence[nn.Module]:
        *lower, top = self._levels()
        return [*lower, top.shared_experts]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        top = self._levels()[-1]
        return [top.task_experts[task], top.gates[task], self.towers[task]]
