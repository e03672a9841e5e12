"""The model protocol every polytask architecture follows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from polytask.outputs import TaskOutputs


class MultiTaskModel(nn.Module):
    """Base class of multi-task models.

    A model maps an input to :class:`~polytask.outputs.TaskOutputs` (predictions per task and
    the shared ``features``) and partitions its parameters **exactly** into the shared ones
    (:meth:`shared_parameters`) and those of each task (:meth:`task_parameters`): every
    parameter is in exactly one group. Balancers use these groups at the parameter level and
    never look inside the model.

    Subclasses set ``self.task_names`` and implement ``forward``, :meth:`shared_modules` and
    :meth:`task_modules`.
    """

    task_names: tuple[str, ...]

    def forward(self, inputs: Any) -> TaskOutputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def shared_modules(self) -> Sequence[nn.Module]:
        """Modules whose parameters are shared by all tasks."""
        raise NotImplementedError

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        """Modules whose parameters belong to ``task`` only."""
        raise NotImplementedError

    def penalty(self) -> Tensor | None:
        """A regularisation term of the model's own (a learnt prior, an orthogonality
        constraint), or ``None``, for the latest forward. It is not a task loss, so balancers
        never weight it: the trainer adds its gradient before the balanced backward (in a loop
        of your own: ``model.penalty().backward(retain_graph=True)`` after the forward, then
        ``polytask.backward(...)``). Models that learn statistics for it (MRN's covariances)
        update them here, in training mode only."""
        return None

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters shared by every task."""
        for module in self.shared_modules():
            yield from module.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Parameters specific to ``task``; ``KeyError`` with close names if unknown."""
        if task not in self.task_names:
            from polytask._registry import unknown_name_message

            raise KeyError(unknown_name_message("task", task, list(self.task_names)))
        for module in self.task_modules(task):
            yield from module.parameters()


def check_partition(model: MultiTaskModel) -> None:
    """Raise ``ValueError`` unless shared and per-task parameters partition the model's
    parameters exactly (none twice, none missing)."""
    owner: dict[int, str] = {}
    groups: list[tuple[str, Iterator[nn.Parameter]]] = [("shared", model.shared_parameters())]
    groups += [(f"task {t!r}", model.task_parameters(t)) for t in model.task_names]
    for group, params in groups:
        for p in params:
            if id(p) in owner:
                raise ValueError(f"a parameter is in both {owner[id(p)]} and {group}")
            owner[id(p)] = group
    names = {id(p): n for n, p in model.named_parameters()}
    missing = [names[i] for i in names if i not in owner]
    if missing:
        raise ValueError(f"parameters in no group: {missing}")
