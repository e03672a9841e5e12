"""The description of one task: its name, loss, metrics, role and prior weight."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor

from polytask.tasks.losses import ElementLoss, Kind, get_loss

Role = Literal["main", "auxiliary"]


@dataclass
class Task:
    """One task of a multi-task problem.

    Attributes:
        name: unique task name; the key of its predictions, targets and masks.
        loss: a built-in loss name (``bce`` binary cross-entropy with logits, ``ce``
            cross-entropy, ``mse``, ``l1``, ``huber``) or a callable
            ``(prediction, target) -> per-element loss`` (then give ``kind``).
        metrics: metric names (``auc``, ``accuracy``, ``f1``, ``mse``, ``mae``, ``r2`` ...);
            the first one is the task's primary metric for model selection.
        role: ``main`` (every task matters; the default) or ``auxiliary`` (a task that helps
            the main ones and must not get worse; read by primary/auxiliary balancers).
        weight: prior weight, used by the ``fixed`` balancer when it is given no weights.
            Losses are always returned unweighted, so nothing is weighted twice.
        num_classes: number of classes of a ``ce`` task (needed by its metrics).
        kind: ``binary``, ``multiclass`` or ``regression``; inferred from a built-in loss.
    """

    name: str
    loss: str | ElementLoss = "mse"
    metrics: Sequence[str] = field(default_factory=tuple)
    role: Role = "main"
    weight: float = 1.0
    num_classes: int | None = None
    kind: Kind | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a task name must be a non-empty string, got {self.name!r}")
        if self.role not in ("main", "auxiliary"):
            raise ValueError(
                f"task {self.name!r}: role must be 'main' or 'auxiliary', got {self.role!r}"
            )
        if not self.weight >= 0:
            raise ValueError(f"task {self.name!r}: weight must be >= 0, got {self.weight}")
        if isinstance(self.loss, str):
            spec = get_loss(self.loss)
            if self.kind is not None and self.kind != spec.kind:
                raise ValueError(
                    f"task {self.name!r}: loss {self.loss!r} is for {spec.kind} tasks, "
                    f"not {self.kind}"
                )
            self.kind = spec.kind
            self._fn: ElementLoss = spec.fn
        else:
            if self.kind is None:
                raise ValueError(
                    f"task {self.name!r}: a custom loss callable needs kind= "
                    "('binary', 'multiclass' or 'regression')"
                )
            self._fn = self.loss
        if self.kind == "multiclass" and self.metrics and self.num_classes is None:
            raise ValueError(f"task {self.name!r}: metrics of a ce task need num_classes=")
        self.metrics = tuple(self.metrics)

    @property
    def task_kind(self) -> Kind:
        """The task's kind (always set after construction)."""
        assert self.kind is not None
        return self.kind

    def element_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-element loss of aligned ``(pred, target)``, shaped like ``target``."""
        return self._fn(pred, target)
