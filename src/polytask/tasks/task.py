"""The description of one task: its name, loss, metrics, role and prior weight."""

from __future__ import annotations

import math
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
            cross-entropy, ``mse``, ``l1``, ``huber``, ``crf``: a linear-chain CRF over a
            token task's logits, with the transitions of the model's CRF head, see
            :mod:`polytask.tasks.crf`) or a callable
            ``(prediction, target) -> per-element loss`` (then give ``kind``).
        metrics: metric names (``auc``, ``accuracy``, ``f1``, ``mse``, ``mae``, ``r2`` ...);
            the first one is the task's primary metric for model selection.
        role: ``main`` (every task matters; the default) or ``auxiliary`` (a task that helps
            the main ones and must not get worse; read by primary/auxiliary balancers).
        weight: prior weight, used by the ``fixed`` balancer when it is given no weights.
            Losses are always returned unweighted, so nothing is weighted twice.
        num_classes: number of classes of a ``ce`` task (needed by its metrics).
        kind: ``binary``, ``multiclass`` or ``regression``; inferred from a built-in loss.
        labels: the name of each class of a ``ce`` task, in class-id order (``span_f1``
            reads BIO tags from them); ``num_classes`` entries.
        target_scale: ``(mean, std)`` of a regression task's target, fitted on training
            rows (``None``: no scaling). The model then predicts the standardised target
            ``z = (y - mean) / std``: the loss compares the prediction with ``z``, so tasks
            in very different units reach the balancer at comparable scales, while
            metrics and :meth:`unscale` map predictions back to ``mean + std * z``, the
            target's own units.
    """

    name: str
    loss: str | ElementLoss = "mse"
    metrics: Sequence[str] = field(default_factory=tuple)
    role: Role = "main"
    weight: float = 1.0
    num_classes: int | None = None
    kind: Kind | None = None
    target_scale: tuple[float, float] | None = None
    labels: Sequence[str] | None = None

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
        if self.target_scale is not None:
            self.target_scale = self._checked_scale(self.target_scale)
        if self.labels is not None:
            self.labels = [str(label) for label in self.labels]
            if self.num_classes is not None and len(self.labels) != self.num_classes:
                raise ValueError(
                    f"task {self.name!r}: {len(self.labels)} labels for {self.num_classes} classes"
                )

    def _checked_scale(self, scale: Sequence[float]) -> tuple[float, float]:
        where = f"task {self.name!r}: target_scale"
        if self.kind != "regression":
            raise ValueError(f"{where} applies to regression tasks only, not {self.kind}")
        if len(scale) != 2:
            raise ValueError(f"{where} must be (mean, std), got {list(scale)}")
        mean, std = float(scale[0]), float(scale[1])
        if not (math.isfinite(mean) and math.isfinite(std)):
            raise ValueError(f"{where} must be finite, got ({mean}, {std})")
        if std <= 0:
            raise ValueError(f"{where}: std must be positive, got {std}")
        return mean, std

    @property
    def uses_crf(self) -> bool:
        """Whether the loss is the linear-chain CRF (``crf``): it reads the transitions the
        model returns (:attr:`polytask.outputs.TaskOutputs.transitions`), and predictions
        are decoded with them."""
        return isinstance(self.loss, str) and get_loss(self.loss).name == "crf"

    @property
    def task_kind(self) -> Kind:
        """The task's kind (always set after construction)."""
        assert self.kind is not None
        return self.kind

    def element_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-element loss of aligned ``(pred, target)``, shaped like ``target``."""
        return self._fn(pred, target)

    def scale(self, target: Tensor) -> Tensor:
        """The target as the model learns it: ``(y - mean) / std`` with a
        :attr:`target_scale`, ``y`` itself otherwise."""
        if self.target_scale is None:
            return target
        mean, std = self.target_scale
        return (target - mean) / std

    def unscale(self, prediction: Tensor) -> Tensor:
        """A prediction in the target's own units: ``mean + std * prediction`` with a
        :attr:`target_scale`, the prediction itself otherwise."""
        if self.target_scale is None:
            return prediction
        mean, std = self.target_scale
        return prediction * std + mean
