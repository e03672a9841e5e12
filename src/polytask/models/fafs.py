"""FAFS: fully-adaptive feature sharing (Lu, Kumar, Zhai, Cheng, Javidi, Feris; CVPR 2017)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.layers import TowerSpec, activation, check_heads, towers
from polytask.models.registry import register
from polytask.models.sharing import share
from polytask.outputs import TaskOutputs

Group = tuple[int, ...]


def task_affinity(errors: Tensor) -> Tensor:
    """Affinity of tasks from per-sample errors ``(N, T)`` (Lu et al. 2017, section 3.3):
    ``A_ij = P(e_i = 1, e_j = 1) + P(e_i = 0, e_j = 0)``, where ``e_t^n = 1`` marks sample ``n``
    as difficult for task ``t`` (its error above the task's median). ``(T, T)``, in [0, 1],
    symmetric, ones on the diagonal."""
    if errors.dim() != 2 or errors.shape[0] < 2:
        raise ValueError(f"errors must be (N >= 2, T), got shape {tuple(errors.shape)}")
    hard = (errors > errors.median(dim=0).values).float()
    both = hard.T @ hard + (1 - hard).T @ (1 - hard)
    return both / errors.shape[0]


def group_by_affinity(affinity: Tensor, num_groups: int) -> list[Group]:
    """Average-linkage agglomerative grouping of ``affinity``'s rows into ``num_groups``
    groups (each merge joins the two groups of highest mean affinity between them). Groups
    are sorted by their smallest member."""
    n = affinity.shape[0]
    if not num_groups >= 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}")
    groups: list[list[int]] = [[i] for i in range(n)]
    while len(groups) > num_groups:
        best, pair = -float("inf"), (0, 1)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                score = float(affinity[groups[a]][:, groups[b]].mean())
                if score > best:
                    best, pair = score, (a, b)
        a, b = pair
        groups[a] = sorted(groups[a] + groups.pop(b))
    return sorted((tuple(g) for g in groups), key=lambda g: g[0])


@register("fafs")
class FAFS(MultiTaskModel):
    """Fully-adaptive feature sharing (Lu, Kumar, Zhai, Cheng, Javidi, Feris: "Fully-adaptive
    Feature Sharing in Multi-Task Networks with Applications in Person Attribute
    Classification", CVPR 2017): start from a thin network that every task shares, then widen
    it greedily from the top layer down. At each step the branches above the current layer are
    grouped by the affinity of their tasks (:func:`task_affinity`, tasks that find the same
    samples hard belong together) and the current layer is split into one branch per group,
    each a copy of the old branch, so widening does not change the network's function.

    ``groups`` (one list of task-index groups per hidden layer) is the grown structure; rebuild
    a trained model with ``FAFS(..., groups=model.groups)`` before loading its state.
    ``describe_tree()`` prints it. A branch that serves several tasks is shared; a branch of
    one task, and each task's linear output layer, belong to that task. ``features`` are the
    outputs of the topmost shared branch of each task's path, branched per task.

    Shapes: input ``(B, input_dim)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width.
        dims: the thin network's layer sizes (``(32, 32)``); copies keep them.
        head_dims: hidden sizes of each task's output layer (``()``: linear).
            Or a factory ``(in_dim, out_dim) -> module``.
        groups: a grown structure to rebuild (default: one group of all tasks per layer).
        activation: activation of every layer (``relu``).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int,
        dims: Sequence[int] = (32, 32),
        head_dims: TowerSpec = (),
        groups: Sequence[Sequence[Sequence[int]]] | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        if not dims:
            raise ValueError("dims must name at least one layer size")
        T = len(self.task_names)
        self.widths = [input_dim, *dims]
        self.act = activation
        everyone = tuple(range(T))
        structure = [[everyone] for _ in dims] if groups is None else groups
        self.groups: list[list[Group]] = [[tuple(g) for g in layer] for layer in structure]
        self._check_groups()
        self.branches = nn.ModuleDict()
        for layer, layer_groups in enumerate(self.groups):
            for group in layer_groups:
                self.branches[self._key(layer, group)] = self._new_branch(layer)
        self.heads = towers(heads, dims[-1], head_dims, activation)
        # Next layer to widen: the topmost one that still has a single group of all tasks
        # below a widened one (or the top layer).
        self.next_layer = max(
            (layer for layer, g in enumerate(self.groups) if len(g) == 1), default=-1
        )

    @staticmethod
    def _key(layer: int, group: Group) -> str:
        return f"{layer}:" + "-".join(map(str, group))

    def _new_branch(self, layer: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.widths[layer], self.widths[layer + 1]), activation(self.act)
        )

    def _check_groups(self) -> None:
        T = len(self.task_names)
        if len(self.groups) != len(self.widths) - 1:
            raise ValueError(f"groups must have one entry per layer ({len(self.widths) - 1})")
        for layer, layer_groups in enumerate(self.groups):
            members = sorted(i for g in layer_groups for i in g)
            if members != list(range(T)):
                raise ValueError(f"groups of layer {layer} must partition the tasks 0..{T - 1}")
            if layer + 1 < len(self.groups):
                above = self.groups[layer + 1]
                if any(not any(set(g) <= set(h) for h in layer_groups) for g in above):
                    raise ValueError(
                        f"layer {layer + 1}'s groups must each lie within one group of layer "
                        f"{layer} (branches only split going up)"
                    )

    def _group_of(self, layer: int, task: int) -> Group:
        return next(g for g in self.groups[layer] if task in g)

    def describe_tree(self) -> str:
        """The grown structure, one line per layer, groups by task name."""
        lines = []
        for layer, layer_groups in enumerate(self.groups):
            names = ["{" + ", ".join(self.task_names[i] for i in g) + "}" for g in layer_groups]
            lines.append(f"layer {layer} ({self.widths[layer + 1]} units): " + " ".join(names))
        return "\n".join(lines)

    @torch.no_grad()
    def grow(self, errors: Tensor, num_groups: int) -> list[Group]:
        """Widen the next layer (top-down): group the branches above it by the mean affinity
        of their tasks (from per-sample errors ``(N, T)`` on held-out data) into
        ``num_groups`` groups, and split the layer's branch into one copy per group. Rebuild
        the optimizer afterwards: the new branches are new parameters.

        Returns:
            The new groups of the widened layer (task indices).

        Raises:
            RuntimeError: every layer has already been widened.
        """
        layer = self.next_layer
        if layer < 0:
            raise RuntimeError("every layer of this FAFS network has already been widened")
        T = len(self.task_names)
        children = (
            [(t,) for t in range(T)] if layer == len(self.groups) - 1 else self.groups[layer + 1]
        )
        affinity = task_affinity(errors)
        between = torch.tensor(
            [[float(affinity[list(a)][:, list(b)].mean()) for b in children] for a in children]
        )
        merged = group_by_affinity(between, min(num_groups, len(children)))
        new_groups = [tuple(sorted(t for c in m for t in children[c])) for m in merged]
        (old,) = self.groups[layer]
        parent = self.branches.pop(self._key(layer, old))
        for group in new_groups:
            self.branches[self._key(layer, group)] = copy.deepcopy(parent)
        self.groups[layer] = sorted(new_groups, key=lambda g: g[0])
        self.next_layer = layer - 1
        return self.groups[layer]

    def forward(self, inputs: Tensor) -> TaskOutputs:
        T, L = len(self.task_names), len(self.groups)
        outs: dict[str, Tensor] = {}
        frontier: dict[int, str] = dict.fromkeys(range(T), "input")
        for layer in range(L):
            for group in self.groups[layer]:
                if len(group) < 2:
                    continue
                below = (
                    "input"
                    if layer == 0
                    else self._key(layer - 1, self._group_of(layer - 1, group[0]))
                )
                key = self._key(layer, group)
                outs[key] = self.branches[key](inputs if layer == 0 else outs[below])
                for t in group:
                    frontier[t] = key
        parts = {"input": inputs, **outs}
        needed = {k: parts[k] for k in dict.fromkeys(frontier.values())}
        views, features = share(needed, self.task_names)
        predictions = {}
        for t, name in enumerate(self.task_names):
            h = views[name][frontier[t]]
            start = 0 if frontier[t] == "input" else int(frontier[t].split(":")[0]) + 1
            for layer in range(start, L):
                h = self.branches[self._key(layer, self._group_of(layer, t))](h)
            predictions[name] = self.heads[name](h)
        return TaskOutputs(predictions, features)

    def _owned(self, task: int | None) -> list[nn.Module]:
        return [
            self.branches[self._key(layer, g)]
            for layer, layer_groups in enumerate(self.groups)
            for g in layer_groups
            if (len(g) > 1 and task is None) or (task is not None and g == (task,))
        ]

    def shared_modules(self) -> Sequence[nn.Module]:
        return self._owned(None)

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [*self._owned(self.task_names.index(task)), self.heads[task]]
