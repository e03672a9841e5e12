"""Reading the autograd graph: which leaf tensors a task loss reaches, and where it stops.

The engine uses this to find the task-specific parameters without asking the model: walking
from loss ``L_t`` towards the inputs and stopping at the task's feature branch gives exactly
the parameters of head ``t``. The walk visits each autograd node once (a few nodes per layer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class Walk:
    """What a walk from one root found.

    Attributes:
        leaves: leaf tensors (parameters, inputs that require grad) reached, in visit order.
        reached_blocked: ``True`` if the walk reached a node it was told must not be reached
            (the shared features' own node, meaning the loss depends on the features other
            than through its branch).
        uses: ``{id(leaf): number of operations that read it}`` among the visited nodes.
        stopped_at: ids of the ``stops`` nodes the walk reached.
        nodes: ids of the nodes the walk visited, ``stops`` and ``blocked`` ones excepted
            (leaves' accumulation nodes included).
        into_stops: ``(node, edge index, output number)`` of every edge from a visited node
            into a ``stops`` node (where a task's graph reads the shared features).
    """

    leaves: list[Tensor] = field(default_factory=list)
    reached_blocked: bool = False
    uses: dict[int, int] = field(default_factory=dict)
    stopped_at: set[int] = field(default_factory=set)
    nodes: set[int] = field(default_factory=set)
    into_stops: list[tuple[Any, int, int]] = field(default_factory=list)


def walk(root: Tensor | Any, stops: Iterable[Any] = (), blocked: Iterable[Any] = ()) -> Walk:
    """Collect the leaf tensors reachable from ``root`` without passing through ``stops``.

    Args:
        root: a tensor with a ``grad_fn`` (a task loss), or an autograd node.
        stops: autograd nodes at which the walk does not descend (the feature branches).
        blocked: autograd nodes whose reaching is reported (the shared features' node).

    Returns:
        :class:`Walk` with the leaves (each once) and whether a blocked node was reached.
    """
    result = Walk()
    start = root.grad_fn if isinstance(root, Tensor) else root
    if start is None:
        return result
    stop_ids = {id(n) for n in stops if n is not None}
    blocked_ids = {id(n) for n in blocked if n is not None}
    seen_nodes: set[int] = set()
    seen_leaves: set[int] = set()
    pending = [start]
    while pending:
        node = pending.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if id(node) in blocked_ids:
            result.reached_blocked = True
            continue
        if id(node) in stop_ids:
            result.stopped_at.add(id(node))
            continue
        result.nodes.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None:
            if id(variable) not in seen_leaves:
                seen_leaves.add(id(variable))
                result.leaves.append(variable)
            continue
        for k, (child, number) in enumerate(node.next_functions):
            if child is not None:
                leaf = getattr(child, "variable", None)
                if leaf is not None:
                    result.uses[id(leaf)] = result.uses.get(id(leaf), 0) + 1
                if id(child) in stop_ids:
                    result.into_stops.append((node, k, number))
                pending.append(child)
    return result
