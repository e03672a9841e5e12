"""What a multi-task model returns: predictions per task and the shared representation.

This leaf module depends on torch only, so that every layer (tasks, gradients, models) can
use it without importing any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from torch import Tensor

_FEATURES_UNUSED: ContextVar[bool] = ContextVar("polytask_features_unused", default=False)


@contextlib.contextmanager
def features_unused() -> Iterator[None]:
    """A block in which no gradient method will read the models' ``features``.

    The trainer runs the forward pass inside it when the balancer needs the losses only; a
    model may then skip work done only for the gradient engine (:func:`polytask.models.
    sharing.share` skips packing several shared tensors into one, a copy of the activations
    forward and backward) and return ``features=None``. Predictions are unchanged.
    """
    with _features_flag(unused=True):
        yield


@contextlib.contextmanager
def features_required() -> Iterator[None]:
    """A block in which ``features`` are built even inside :func:`features_unused`: for a
    model that reads its inner model's features itself (the small towers of
    :class:`~polytask.models.SmallTowers`)."""
    with _features_flag(unused=False):
        yield


@contextlib.contextmanager
def _features_flag(unused: bool) -> Iterator[None]:
    token = _FEATURES_UNUSED.set(unused)
    try:
        yield
    finally:
        _FEATURES_UNUSED.reset(token)


def features_used() -> bool:
    """``False`` inside :func:`features_unused`, else ``True``."""
    return not _FEATURES_UNUSED.get()


def branch(features: Tensor, task_names: Sequence[str]) -> dict[str, Tensor]:
    """One branch point of ``features`` per task.

    Each returned tensor is a view of ``features`` (no copy, same values); a task head that
    reads only its own branch lets the gradient engine take every task's gradient with respect
    to the shared representation in **one** backward pass through the heads (the gradient of
    ``sum_t L_t`` with respect to branch ``t`` is exactly ``dL_t/dfeatures``), and the trunk
    is then differentiated once, by the final weighted backward.

    Args:
        features: the shared representation, shape ``(B, ...)``.
        task_names: the task names, one branch each.

    Returns:
        ``{task: view of features}``. A plain ``loss.backward()`` through the branches gives
        the same gradients as if the heads had read ``features`` directly.
    """
    if features._base is not None:
        # A view's branches would point at the view's own base (autograd keeps only the
        # root), so a view is first made a tensor of its own.
        features = features.clone()
    return {name: features.view_as(features) for name in task_names}


@dataclass
class TaskOutputs:
    """The output of a multi-task model.

    Attributes:
        predictions: ``{task: prediction tensor}``; shapes are per task (``(B,)`` or ``(B, 1)``
            for a binary or scalar regression task, ``(B, C)`` for ``C`` classes).
        features: the shared representation the task heads read, either one tensor
            ``(B, ...)`` or ``{task: branch}`` made by :func:`branch` (faster per-task
            gradients). Pass it to :func:`polytask.backward` as ``features=``.
        extras: anything else the model wants to expose (gate weights, attention maps).
        companions: ``{task: [(prediction, weight), ...]}``: further predictions of a task's
            own label whose losses are added to that task's loss with their weights
            (``L_t + sum_a weight_a * loss_t(prediction_a)``, same label, same mask), for
            example the self-auxiliary small towers of
            :class:`~polytask.models.SmallTowers`. Metrics read ``predictions`` only.
        transitions: ``{task: (C + 2, C)}``: the transition scores of a linear-chain CRF over
            a token task's logits ``(B, L, C)`` (rows ``0..C-1``: previous tag to next tag,
            row ``C``: start, row ``C + 1``: end), for a task whose loss is ``crf``
            (:mod:`polytask.tasks.crf`). The chain runs over the positions where
            ``extras["mask"]`` ``(B, L)`` is True (every position without it).
    """

    predictions: dict[str, Tensor]
    features: Tensor | Mapping[str, Tensor] | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    companions: dict[str, list[tuple[Tensor, float]]] = field(default_factory=dict)
    transitions: dict[str, Tensor] = field(default_factory=dict)

    def shared_features(self) -> Tensor | None:
        """The single shared representation tensor behind :attr:`features`."""
        if self.features is None or isinstance(self.features, Tensor):
            return self.features
        first = next(iter(self.features.values()))
        base = first._base
        return base if base is not None else first
