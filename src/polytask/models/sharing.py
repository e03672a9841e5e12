"""Handing the shared state of a model to its task heads as one branched ``features`` tensor.

The gradient engine needs a single tensor that holds everything the shared parameters
compute and that the task-specific parameters read (see :func:`polytask.branch`). Many
architectures have several such tensors: MMoE's expert outputs and the (embedded) input its
gates read; PLE's shared experts and each task's previous-level output; MTAN's stage outputs.
:func:`share` packs them into one tensor, branches it per task, and gives each task views of
the original shapes, so that every architecture keeps the engine's one-backward fast paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from polytask.outputs import branch, features_used


def share(
    parts: Mapping[str, Tensor], task_names: Sequence[str]
) -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor] | None]:
    """Per-task views of the shared tensors ``parts`` and the branched ``features``.

    Inside :func:`polytask.outputs.features_unused` (no gradient method will read the
    features) every task gets ``parts`` as they are and ``features`` is ``None``. Otherwise,
    parts that do not require grad (a raw input, anything under ``torch.no_grad``) are passed
    to every task as they are and left out of the features: their gradient belongs to no
    shared parameter. Parts that do are flattened per sample, concatenated into one tensor
    ``(B, N)`` (or used as is when there is only one), and branched per task.

    Args:
        parts: ``{name: tensor (B, ...)}``; all with the same batch size.
        task_names: the tasks, one branch each.

    Returns:
        ``({task: {name: tensor}}, features)``: each task's tensors have the shapes of
        ``parts`` and depend on the shared ones only through that task's branch;
        ``features`` is ``{task: branch}`` for :class:`~polytask.outputs.TaskOutputs`, or
        ``None`` when no part requires grad.
    """
    if not features_used():
        return {t: dict(parts) for t in task_names}, None
    trained = [name for name, tensor in parts.items() if tensor.requires_grad]
    plain = {name: tensor for name, tensor in parts.items() if not tensor.requires_grad}
    if not trained:
        return {t: dict(plain) for t in task_names}, None
    if len(trained) == 1:
        name = trained[0]
        branches = branch(parts[name], task_names)
        return {t: {**plain, name: branches[t]} for t in task_names}, branches
    batch = parts[trained[0]].shape[0]
    flat = [parts[name].reshape(batch, -1) for name in trained]
    sizes = [f.shape[1] for f in flat]
    branches = branch(torch.cat(flat, dim=1), task_names)
    views: dict[str, dict[str, Tensor]] = {}
    for task in task_names:
        pieces = torch.split(branches[task], sizes, dim=1)
        views[task] = dict(plain)
        for name, piece in zip(trained, pieces, strict=True):
            views[task][name] = piece.reshape(parts[name].shape)
    return views, branches
