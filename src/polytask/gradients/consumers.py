"""Per-task feature gradients in one backward for heads that read one plain tensor.

Polytask's own models give each head a branch of the shared features
(:func:`polytask.branch`), and one backward of ``sum_t L_t`` then yields every task's
feature gradient. A user's own ``nn.Module`` has no branches: its heads read the trunk's
output tensor ``z`` directly. :class:`ConsumerCapture` finds, for each task, the autograd
nodes of its head that read ``z`` (its *consumers*), and records with node hooks the
gradient each of them sends to ``z`` during one backward of ``sum_t L_t`` stopped at ``z``:
summed per task, these are exactly the rows ``dL_t/dz``. It applies when every task's graph
above ``z`` is its own (no node shared by two tasks, no path into the trunk other than
through ``z``); otherwise :func:`consumer_capture` returns ``None`` and the engine takes the
exact per-task passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd.graph import get_gradient_edge

from polytask.gradients.graph import walk


class ConsumerCapture:
    """The consumers of ``z`` in each task's graph, their head leaves, and the hooks that
    record per-task gradients (built by :func:`consumer_capture`).

    Attributes:
        consumers: per task, ``(node, edge indices that point at z)``.
        heads: per task, the leaf tensors of its head (parameters reached without ``z``).
    """

    def __init__(
        self, z: Tensor, consumers: list[list[tuple[Any, list[int]]]], heads: list[list[Tensor]]
    ) -> None:
        self.z, self.consumers, self.heads = z, consumers, heads

    def through_heads(self, vector: Tensor) -> tuple[Tensor, list[Tensor | None] | None]:
        """One backward of ``sum_t L_t`` stopped at ``z``: the rows ``(T, *z.shape)`` and the
        heads' gradients, as :func:`polytask.gradients.backward._through_heads` returns them
        (``None`` when they went straight into ``.grad``). The graph is retained."""
        T = len(self.consumers)
        rows: list[Tensor | None] = [None] * T
        handles = []
        for t, nodes in enumerate(self.consumers):
            for node, edges in nodes:

                def record(
                    grad_inputs: Any, grad_outputs: Any, t: int = t, ks: Any = edges
                ) -> None:
                    for k in ks:
                        grad = grad_inputs[k]
                        if grad is not None:
                            rows[t] = grad if rows[t] is None else rows[t] + grad

                handles.append(node.register_hook(record))
        leaves = [leaf for task_leaves in self.heads for leaf in task_leaves]
        try:
            if all(leaf.grad is None for leaf in leaves):
                # z is an input so that the consumers compute their gradient for it; the
                # sum that autograd leaves in z.grad is not the user's: put back what was.
                previous = self.z.grad if self.z.is_leaf else None
                torch.autograd.backward(vector.sum(), inputs=[self.z, *leaves], retain_graph=True)
                self.z.grad = previous
                head_grads: list[Tensor | None] | None = None
            else:
                grads = torch.autograd.grad(
                    vector.sum(), [self.z, *leaves], retain_graph=True, allow_unused=True
                )
                head_grads = list(grads[1:])
        finally:
            for handle in handles:
                handle.remove()
        stacked = torch.stack([torch.zeros_like(self.z) if r is None else r for r in rows])
        return stacked, head_grads


def consumer_capture(
    losses: Sequence[Tensor], z: Tensor, starts: Sequence[Any] | None = None
) -> ConsumerCapture | None:
    """A :class:`ConsumerCapture` for the losses over ``z``, or ``None`` when some task's
    graph shares a node with another's or reaches the trunk other than through ``z``.

    ``starts``: per task, the autograd node its graph starts from, when the losses are
    entries of one stacked tensor (the ``stack`` node's inputs,
    :meth:`~polytask.gradients.unstack.Unstacked.sources`); by default each loss's own."""
    edge = get_gradient_edge(z)
    target, number = edge.node, edge.output_nr
    trunk = walk(target).nodes  # every node below the features
    claimed: set[int] = set()
    consumers: list[list[tuple[Any, list[int]]]] = []
    heads: list[list[Tensor]] = []
    roots = list(starts) if starts is not None else [loss.grad_fn for loss in losses]
    for root in roots:
        if root is None:
            return None
        found = walk(root, stops=[target])
        if found.nodes & trunk or found.nodes & claimed:
            return None  # reads the trunk around z, or shares a node with another task
        edges: dict[int, tuple[Any, list[int]]] = {}
        for node, k, child_number in found.into_stops:
            if child_number == number:
                edges.setdefault(id(node), (node, []))[1].append(k)
        if not edges:
            return None  # a task that does not read z: the loop handles it exactly
        claimed |= found.nodes
        consumers.append(list(edges.values()))
        heads.append(found.leaves)
    return ConsumerCapture(z, consumers, heads)
