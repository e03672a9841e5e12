"""A task-routed supernet in the style of UFO (Xi, Sun, Yu et al., 2022; reference text 02)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Literal, cast

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.layers import TowerSpec, activation, check_heads, towers
from polytask.models.registry import register
from polytask.outputs import TaskOutputs, branch

Choice = Literal["shared", "task"]


class ResidualFFN(nn.Module):
    """A pre-norm residual feed-forward unit: ``x + W_2 act(W_1 LayerNorm(x))``.

    Shapes: ``(B, width) -> (B, width)``.
    """

    def __init__(self, width: int, hidden: int, act: str, dropout: float) -> None:
        super().__init__()
        self.ffn = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, hidden),
            activation(act),
            nn.Dropout(dropout),
            nn.Linear(hidden, width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.ffn(x)


@register("ufo")
class UFO(MultiTaskModel):
    """A multi-path supernet routed by task, as in UFO (Xi, Sun, Yu, et al.: "UFO: Unified
    Feature Optimization", ECCV 2022; reference text 02): a shared stem, then ``num_blocks``
    blocks that each hold a shared FFN unit and task-specific FFN units; every task chooses,
    block by block, the shared unit or its own (``routes``). Tasks whose routes agree share
    the computation. :meth:`extract` returns the sub-network of one task as a standalone
    module for deployment, with identical outputs.

    Here the blocks are residual FFN units over vectors (the paper's are the FFNs of a vision
    transformer); images are flattened by the stem. A unit used by several tasks is shared, a
    unit used by one task is that task's. ``features`` are the output of the blocks every task
    takes shared: branched per task when no unit after them is used by two tasks, else one
    tensor (then the parameter level takes exact per-task gradients without it).

    Shapes: input ``(B, ...)`` flattened to ``(B, input_dim)`` -> ``predictions[t]``
    ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: flattened input width.
        width: width of the stem and blocks (64).
        num_blocks: number of blocks (4).
        hidden: hidden width of each FFN unit (``2 * width``).
        routes: ``{task: ["shared" | "task", ...]}`` (one choice per block); default: shared
            for every block but the last, which is task-specific.
        head_dims: hidden sizes of each head (``()``: linear).
            Or a factory ``(in_dim, out_dim) -> module``.
        activation: FFN activation (``gelu``).
        dropout: dropout inside FFN units (0).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int,
        width: int = 64,
        num_blocks: int = 4,
        hidden: int | None = None,
        routes: Mapping[str, Sequence[Choice]] | None = None,
        head_dims: TowerSpec = (),
        activation: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        default: list[Choice] = [*(["shared"] * (num_blocks - 1)), "task"]  # type: ignore[list-item]
        self.routes = self._check_routes(routes, num_blocks, default)
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(input_dim, width))
        hidden = hidden or 2 * width
        self.shared_units = nn.ModuleDict()
        self.task_units = nn.ModuleDict()
        for b in range(num_blocks):
            users = [t for t in self.task_names if self.routes[t][b] == "shared"]
            if users:
                self.shared_units[str(b)] = ResidualFFN(width, hidden, activation, dropout)
            for t in self.task_names:
                if self.routes[t][b] == "task":
                    self.task_units[f"{b}/{t}"] = ResidualFFN(width, hidden, activation, dropout)
        self.heads = towers(heads, width, head_dims, activation)
        self.prefix = next(
            (b for b in range(num_blocks) if any(r[b] == "task" for r in self.routes.values())),
            num_blocks,
        )
        self.branched = all(len(self._users(b)) < 2 for b in range(self.prefix, num_blocks))

    def _check_routes(
        self,
        routes: Mapping[str, Sequence[Choice]] | None,
        num_blocks: int,
        default: list[Choice],
    ) -> dict[str, list[Choice]]:
        routes = dict(routes or {})
        unknown = [t for t in routes if t not in self.task_names]
        if unknown:
            raise KeyError(f"routes name unknown task(s) {unknown}; tasks: {list(self.task_names)}")
        checked: dict[str, list[Choice]] = {}
        for t in self.task_names:
            route = list(routes.get(t, default))
            if len(route) != num_blocks or any(c not in ("shared", "task") for c in route):
                raise ValueError(
                    f"route of task {t!r} must list 'shared' or 'task' for each of the "
                    f"{num_blocks} blocks, got {route}"
                )
            checked[t] = route
        return checked

    def _users(self, block: int) -> list[str]:
        return [t for t in self.task_names if self.routes[t][block] == "shared"]

    def _unit(self, block: int, task: str) -> nn.Module:
        if self.routes[task][block] == "shared":
            return self.shared_units[str(block)]
        return self.task_units[f"{block}/{task}"]

    def forward(self, inputs: Tensor) -> TaskOutputs:
        z = self.stem(inputs)
        for b in range(self.prefix):
            z = self.shared_units[str(b)](z)
        views = branch(z, self.task_names) if self.branched else dict.fromkeys(self.task_names, z)
        memo: dict[tuple[str, ...], Tensor] = {}
        predictions = {}
        for t in self.task_names:
            h, key = views[t], cast(tuple[str, ...], ())
            for b in range(self.prefix, len(self.routes[t])):
                key += (t if self.routes[t][b] == "task" else "shared",)
                if key not in memo:
                    memo[key] = self._unit(b, t)(h)
                h = memo[key]
            predictions[t] = self.heads[t](h)
        return TaskOutputs(predictions, views if self.branched else z)

    def extract(self, task: str) -> nn.Sequential:
        """Task ``task``'s path (stem, its chosen units, its head) as a standalone copy:
        ``extract(t)(x)`` equals ``model(x).predictions[t]``, with no other task's
        parameters."""
        if task not in self.task_names:
            raise KeyError(f"unknown task {task!r}; tasks: {list(self.task_names)}")
        units = [self._unit(b, task) for b in range(len(self.routes[task]))]
        return copy.deepcopy(nn.Sequential(self.stem, *units, self.heads[task]))

    def _owned(self, task: str | None) -> list[nn.Module]:
        owned: list[nn.Module] = []
        for b in range(len(self.routes[self.task_names[0]])):
            users = self._users(b)
            if users and ((task is None and len(users) > 1) or users == [task]):
                owned.append(self.shared_units[str(b)])
            if task is not None and self.routes[task][b] == "task":
                owned.append(self.task_units[f"{b}/{task}"])
        return owned

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.stem, *self._owned(None)]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [*self._owned(task), self.heads[task]]
