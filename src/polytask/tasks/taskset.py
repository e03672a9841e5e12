"""A set of tasks: computes the loss vector (masked, finite-checked) and builds metrics."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Literal

import torch
import torchmetrics
from torch import Tensor

from polytask._registry import unknown_name_message
from polytask.outputs import TaskOutputs
from polytask.tasks import crf
from polytask.tasks.losses import align, label_mask, masked_mean, masked_sum, sanitize_target
from polytask.tasks.metrics import higher_is_better, make_metric, metric_inputs
from polytask.tasks.target_checks import out_of_range, range_message
from polytask.tasks.task import Role, Task

NonFinitePolicy = Literal["raise", "skip"]


class NonFiniteLossError(FloatingPointError):
    """A task loss is NaN or infinite; the message names the task(s)."""


class TaskLosses(Mapping[str, Tensor]):
    """One scalar loss per task, in task order, plus what balancers need to know of the tasks.

    Each loss is its own autograd node (never slices of one stacked tensor), so a backward of
    one task's loss touches only that task's head.

    Attributes:
        roles: ``{task: "main" | "auxiliary"}``.
        prior_weights: ``{task: Task.weight}``.
        skip: ``True`` when a loss was not finite and the policy was ``"skip"``: then
            :func:`polytask.backward` leaves every gradient untouched.
        present: per task in order, whether the batch had at least one labelled element
            for it. An absent task (``False``) takes no part in the step: the balancer
            decides among the present tasks and leaves the absent ones' state alone.
            ``None`` (the default when built by hand): every task is present.
        counts: labelled elements per task ``(T,)`` on the losses' device (``None`` when
            built by hand); ``loss * count`` is the task's summed loss, for exact means over
            several batches.
    """

    def __init__(
        self,
        losses: Mapping[str, Tensor],
        roles: Mapping[str, Role] | None = None,
        prior_weights: Mapping[str, float] | None = None,
        skip: bool = False,
        present: Sequence[bool] | None = None,
        counts: Tensor | None = None,
    ) -> None:
        if not losses:
            raise ValueError("TaskLosses needs at least one task loss")
        for name, value in losses.items():
            if value.dim() != 0:
                raise ValueError(
                    f"task {name!r}: a task loss must be a scalar, got shape {tuple(value.shape)}"
                )
        self._losses = dict(losses)
        self.roles: dict[str, Role] = dict(roles or dict.fromkeys(self._losses, "main"))
        self.prior_weights = dict(prior_weights or dict.fromkeys(self._losses, 1.0))
        self.skip = skip
        if present is not None and len(present) != len(self._losses):
            raise ValueError(f"present has {len(present)} entries for {len(self._losses)} tasks")
        self.present: list[bool] | None = None if present is None else [bool(p) for p in present]
        self.counts = counts
        self._detached: Tensor | None = None

    def __getitem__(self, name: str) -> Tensor:
        return self._losses[name]

    def __repr__(self) -> str:
        values = self.detached().tolist()
        shown = ", ".join(f"{n}={v:.4f}" for n, v in zip(self._losses, values, strict=True))
        return f"TaskLosses({shown})"

    def __iter__(self) -> Iterator[str]:
        return iter(self._losses)

    def __len__(self) -> int:
        return len(self._losses)

    @property
    def names(self) -> list[str]:
        """Task names in order."""
        return list(self._losses)

    def values_list(self) -> list[Tensor]:
        """The scalar losses in task order (separate autograd nodes)."""
        return list(self._losses.values())

    def stack(self) -> Tensor:
        """The loss vector ``(T,)`` (a new node; use for weighting, not for per-task backward)."""
        return torch.stack(self.values_list())

    def detached(self) -> Tensor:
        """The loss vector ``(T,)`` without autograd history (stacked once, then reused: the
        finite check, the trainer's logging and evaluation all read it)."""
        if self._detached is None:
            self._detached = self.stack().detach()
        return self._detached


def weighted_mean(element: Tensor, mask: Tensor, row_weights: Tensor | None) -> Tensor:
    """The mean of ``element`` over its labelled entries (:func:`masked_mean`), or with
    ``row_weights`` ``(B,)`` the weighted mean ``sum w l / sum w`` over them."""
    if row_weights is None:
        return masked_mean(element, mask)
    if row_weights.shape != element.shape[:1]:
        raise ValueError(
            f"row_weights has shape {tuple(row_weights.shape)}; it must be "
            f"({element.shape[0]},), one weight per row"
        )
    weight = row_weights.to(element.dtype).reshape(-1, *[1] * (element.dim() - 1))
    weight = weight.expand_as(element)
    return masked_sum(element * weight, mask)[0] / masked_sum(weight, mask)[0].clamp_min(1e-12)


def nonfinite_tasks(names: Sequence[str], values: Tensor) -> list[str]:
    """Names of the tasks whose entry in the 1-D ``values`` is NaN or infinite."""
    bad = (~torch.isfinite(values.detach())).nonzero().flatten().tolist()
    return [names[i] for i in bad]


class TaskSet(Sequence[Task]):
    """An ordered set of uniquely named tasks.

    Args:
        tasks: the tasks.
        on_nonfinite: what :meth:`losses` does when a task loss is NaN or infinite:
            ``"raise"`` (default) raises :class:`NonFiniteLossError` naming the task;
            ``"skip"`` warns, naming the task, and marks the step skipped so that
            :func:`polytask.backward` and the trainer leave the parameters unchanged.

    Checking costs one device synchronisation per step: one read of ``2T`` booleans (which
    losses are finite, which tasks have a label in the batch) plus one per classification
    task (whether a labelled target is outside what its loss takes: ``bce`` outside
    ``[0, 1]``, a ``ce`` class past the logits; :mod:`polytask.tasks.target_checks`).

    Example:
        >>> tasks = TaskSet([Task("left", "ce", num_classes=10), Task("right", "mse")])
        >>> tasks.names
        ['left', 'right']
    """

    def __init__(self, tasks: Iterable[Task], on_nonfinite: NonFinitePolicy = "raise") -> None:
        self._tasks = list(tasks)
        if not self._tasks:
            raise ValueError("a TaskSet needs at least one task")
        names = [t.name for t in self._tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"task names must be unique; repeated: {duplicates}")
        if on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
        self.on_nonfinite: NonFinitePolicy = on_nonfinite
        self._by_name = {t.name: t for t in self._tasks}

    def __getitem__(self, index: int) -> Task:  # type: ignore[override]
        return self._tasks[index]

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    @property
    def names(self) -> list[str]:
        """Task names in order."""
        return [t.name for t in self._tasks]

    def task(self, name: str) -> Task:
        """The task called ``name``; ``KeyError`` naming the closest tasks otherwise."""
        if name not in self._by_name:
            raise KeyError(unknown_name_message("task", name, self.names))
        return self._by_name[name]

    def roles(self) -> dict[str, Role]:
        """``{task: role}``."""
        return {t.name: t.role for t in self._tasks}

    def _check_keys(self, what: str, mapping: Mapping[str, object], required: bool) -> None:
        for key in mapping:
            if key not in self._by_name:
                raise KeyError(unknown_name_message(f"task in {what}", key, self.names))
        if required:
            missing = [n for n in self.names if n not in mapping]
            if missing:
                raise KeyError(f"{what} has no entry for task(s) {missing}")

    def losses(
        self,
        outputs: TaskOutputs | Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        row_weights: Tensor | None = None,
    ) -> TaskLosses:
        """The loss of every task, averaged over the samples that have its label.

        Args:
            outputs: the model's :class:`TaskOutputs` or ``{task: prediction}``.
            targets: ``{task: target}``; ``(B,)`` for binary/scalar tasks, ``(B, k)`` for
                vector regression, integer ``(B,)`` or ``(B, L)`` for classification.
            masks: optional ``{task: bool tensor (B,) or target-shaped}``; ``False`` marks a
                missing label. NaN float targets and negative class targets are also missing.
            row_weights: optional ``(B,)`` non-negative weight of each row: each task's loss
                is then ``sum_i w_i l_i / sum_i w_i`` over its labelled elements (FedEM's
                responsibilities, importance weights).

        Returns:
            :class:`TaskLosses` (unweighted).

        Raises:
            KeyError: a prediction, target or mask is named after no task, or missing.
            ValueError / TypeError: a shape or dtype does not fit the task's loss.
            NonFiniteLossError: a loss is NaN/inf and ``on_nonfinite="raise"``.
        """
        predictions = outputs.predictions if isinstance(outputs, TaskOutputs) else outputs
        companions = outputs.companions if isinstance(outputs, TaskOutputs) else {}
        self._check_keys("predictions", predictions, required=True)
        self._check_keys("companions", companions, required=False)
        self._check_keys("targets", targets, required=True)
        if masks is not None:
            self._check_keys("masks", masks, required=False)
        chains = self._chains(outputs)
        for name in companions:
            if self.task(name).uses_crf:
                raise ValueError(f"task {name!r}: a crf task takes no companion predictions")
        values: dict[str, Tensor] = {}
        counts: list[Tensor] = []
        ranges: list[Tensor] = []  # classification tasks: a label their loss cannot take
        ranged: list[tuple[Task, Tensor, Tensor, int | None]] = []  # what the message needs
        for task in self._tasks:
            target, clean, mask, classes, element = self._elements(
                task, predictions, targets, masks, chains
            )
            if task.kind == "binary" or classes is not None:
                ranges.append(out_of_range(task, target, mask, classes))
                ranged.append((task, target, mask, classes))
            total, count = masked_sum(element, mask)
            loss = (
                total / count.clamp_min(1.0)
                if row_weights is None
                else weighted_mean(element, mask, row_weights)
            )
            for extra, weight in companions.get(task.name, ()):
                extra, _ = align(task.name, task.task_kind, extra, targets[task.name])
                loss = loss + weight * weighted_mean(task.element_loss(extra, clean), mask,
                                                     row_weights)  # fmt: skip
            values[task.name] = loss
            counts.append(count.detach())
        result = TaskLosses(
            values,
            self.roles(),
            {t.name: t.weight for t in self._tasks},
            counts=torch.stack(counts),
        )
        vector = result.detached()
        assert result.counts is not None
        # One read from the device for every check: finiteness, presence, target ranges.
        checks = [torch.isfinite(vector), result.counts > 0]
        if ranges:
            checks.append(torch.stack(ranges).to(vector.device))
        flags = torch.cat(checks).tolist()
        T = len(self._tasks)
        result.present = [bool(f) for f in flags[T : 2 * T]]
        if any(flags[2 * T :]):
            raise ValueError(range_message(*ranged[flags[2 * T :].index(True)]))
        if not all(flags[:T]):
            bad = nonfinite_tasks(result.names, vector)
            message = (
                f"non-finite loss for task(s) {bad} "
                f"(values {[float(vector[result.names.index(b)]) for b in bad]}); "
                "check the inputs and labels of this batch, lower the learning rate, or set "
                "on_nonfinite='skip' to skip such steps"
            )
            if self.on_nonfinite == "raise":
                raise NonFiniteLossError(message)
            warnings.warn(f"skipping step: {message}", RuntimeWarning, stacklevel=2)
            result.skip = True
        return result

    def _elements(
        self,
        task: Task,
        predictions: Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None,
        chains: Mapping[str, tuple[Tensor, Tensor]],
    ) -> tuple[Tensor, Tensor, Tensor, int | None, Tensor]:
        """One task's aligned target, the target as the loss reads it, the label mask, the
        class count (multiclass) and the per-element loss (``chains``: the transitions and
        real positions of the crf tasks, :meth:`_chains`)."""
        pred, target = align(task.name, task.task_kind, predictions[task.name], targets[task.name])
        mask = label_mask(target)
        if masks is not None and task.name in masks:
            given = masks[task.name]
            if given.shape != target.shape[: given.dim()]:
                raise ValueError(
                    f"task {task.name!r}: mask shape {tuple(given.shape)} does not fit "
                    f"target shape {tuple(target.shape)}"
                )
            while given.dim() < mask.dim():
                given = given.unsqueeze(-1)
            mask = mask & given.to(torch.bool)
        clean = task.scale(sanitize_target(target))
        classes = int(pred.shape[-1]) if task.kind == "multiclass" else None
        try:
            if task.uses_crf:
                transitions, real = chains[task.name]
                element = crf.token_losses(pred, clean, mask, transitions, real)
            else:
                element = task.element_loss(pred, clean)
        except IndexError as error:  # a class index past the logits (on the CPU)
            raise ValueError(range_message(task, target, mask, classes)) from error
        return target, clean, mask, classes, element

    def row_losses(
        self,
        outputs: TaskOutputs | Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Each row's loss of each task: ``(values, labelled)``, both ``(B, T)`` in task
        order; a row's value is its mean over its labelled elements (a token task's
        labelled tokens), 0 where the row has no label (``labelled`` False). For methods
        that weigh rows (FedEM's responsibilities); same inputs as :meth:`losses`, without
        its checks of finiteness and presence."""
        predictions = outputs.predictions if isinstance(outputs, TaskOutputs) else outputs
        self._check_keys("predictions", predictions, required=True)
        self._check_keys("targets", targets, required=True)
        chains = self._chains(outputs)
        values, labelled = [], []
        for task in self._tasks:
            _, _, mask, _, element = self._elements(task, predictions, targets, masks, chains)
            while mask.dim() < element.dim():
                mask = mask.unsqueeze(-1)
            mask = mask.expand_as(element).reshape(element.shape[0], -1)
            flat = torch.where(mask, element.reshape(element.shape[0], -1), 0.0)
            count = mask.sum(dim=1)
            values.append(flat.sum(dim=1) / count.clamp_min(1).to(flat.dtype))
            labelled.append(count > 0)
        return torch.stack(values, dim=1), torch.stack(labelled, dim=1)

    def _chains(
        self, outputs: TaskOutputs | Mapping[str, Tensor]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """``{crf task: (transitions, real positions (B, L))}`` from the model's outputs;
        raises when a crf task has no transitions or a task with transitions is not crf
        (they would not be trained)."""
        given = outputs.transitions if isinstance(outputs, TaskOutputs) else {}
        self._check_keys("transitions", given, required=False)
        chains = {}
        for task in self._tasks:
            if task.uses_crf and task.name not in given:
                raise ValueError(
                    f"task {task.name!r}: loss 'crf' reads the transitions of a CRF head and "
                    "none came with the predictions; give the task a CRF head (configuration: "
                    f"model.options.head_types.{task.name}=crf; code: head_types="
                    f"{{{task.name!r}: 'crf'}} in the transformer or bilstm models, or "
                    "TaskOutputs(..., transitions=...) from your own model) and pass the "
                    "model's outputs to TaskSet.losses, not a dict of its predictions"
                )
            if task.name in given and not task.uses_crf:
                raise ValueError(
                    f"task {task.name!r}: the model returns CRF transitions for it, but its "
                    f"loss is {task.loss!r}, so they would never be trained; set its loss to "
                    f"'crf' (configuration: tasks.{task.name}.loss=crf) or give it a token "
                    "head instead"
                )
            if task.uses_crf:
                assert isinstance(outputs, TaskOutputs)
                chains[task.name] = (
                    given[task.name],
                    crf.real_positions(outputs.predictions[task.name], outputs.extras),
                )
        return chains

    def readable(self, outputs: TaskOutputs | Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The predictions as a user reads them: a crf task's logits decoded with its
        transitions into max-marginal scores (their ``argmax(-1)`` is the Viterbi path,
        :func:`polytask.tasks.crf.max_marginals`), a regression task's in the target's own
        units (:meth:`Task.unscale`), the others as they are. ``{task: tensor}``."""
        predictions = outputs.predictions if isinstance(outputs, TaskOutputs) else outputs
        chains = self._chains(outputs)
        out = {}
        for task in self._tasks:
            pred = predictions[task.name]
            if task.name in chains:
                pred = crf.max_marginals(pred, *chains[task.name])
            out[task.name] = task.unscale(pred)
        return out

    def make_metrics(self) -> dict[str, dict[str, torchmetrics.Metric]]:
        """Fresh metric objects: ``{task: {metric name: Metric}}``."""
        return {
            t.name: {m: make_metric(m, t.task_kind, t.num_classes, t.labels) for m in t.metrics}
            for t in self._tasks
        }

    def directions(self) -> dict[str, dict[str, bool]]:
        """``{task: {metric: higher_is_better}}``."""
        return {
            name: {m: higher_is_better(obj) for m, obj in per_task.items()}
            for name, per_task in self.make_metrics().items()
        }

    def update_metrics(
        self,
        metrics: Mapping[str, Mapping[str, torchmetrics.Metric]],
        outputs: TaskOutputs | Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Feed one batch to ``metrics`` (from :meth:`make_metrics`), labelled samples only;
        ``outputs``: the model's :class:`TaskOutputs` (needed by crf tasks, whose
        predictions are decoded first: :meth:`readable`) or ``{task: prediction}``."""
        predictions = self.readable(outputs)
        for task in self._tasks:
            if not metrics.get(task.name):
                continue
            pred, target = align(
                task.name, task.task_kind, predictions[task.name].detach(), targets[task.name]
            )
            keep = label_mask(target)
            if masks is not None and task.name in masks:
                given = masks[task.name].to(torch.bool)
                while given.dim() < keep.dim():
                    given = given.unsqueeze(-1)
                keep = keep & given
            sequence = [
                m for m in metrics[task.name].values() if getattr(m, "sequence_level", False)
            ]
            if sequence:  # whole sequences: predicted ids, gold ids with -1 where unlabelled
                ids = pred.argmax(-1)
                gold = torch.where(keep, target, torch.full_like(target, -1))
                for metric in sequence:
                    metric.update(ids, gold)
            pred, target = pred.float()[keep], target[keep]
            if target.numel() == 0:
                continue
            p, y = metric_inputs(task.task_kind, pred, target)
            for metric in metrics[task.name].values():
                if not getattr(metric, "sequence_level", False):
                    metric.update(p, y)
