"""DTP: dynamic task prioritisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from polytask._registry import unknown_name_message
from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting
from polytask.balancers.registry import register


@register("dtp")
class DTP(LossWeighting):
    """Dynamic Task Prioritization (Guo et al., ECCV 2018; reference text 05): harder tasks
    (lower key performance indicator) get more weight, by focal weighting

    ``w_k = -(1 - kbar_k)^gamma log(kbar_k) / T``,  ``kbar_k <- alpha kappa_k + (1 - alpha) kbar_k``

    where ``kappa_k`` in ``(0, 1]`` is task ``k``'s KPI (higher is better).

    Args:
        kpi: ``"loss"`` (default): ``kappa_k = exp(-L_k)`` at every step, which for a
            cross-entropy task is the geometric mean of the probability given to the true class;
            ``"metric"``: ``kappa_k`` is a validation metric in ``[0, 1]`` (accuracy, AUC ...)
            fed by the trainer through :meth:`observe_metrics` (equal weights until then).
        metrics: with ``kpi="metric"``, ``{task: metric name}``.
        alpha: EMA factor of the KPI (0.5).
        gamma: focusing exponent (1.0; 0 gives ``-log kbar``).
        eps: KPIs are clipped to ``[eps, 1 - eps]`` (1e-6).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"order_invariant"})

    def __init__(
        self,
        kpi: Literal["loss", "metric"] = "loss",
        metrics: Mapping[str, str] | None = None,
        alpha: float = 0.5,
        gamma: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if kpi not in ("loss", "metric"):
            raise ValueError(f"kpi must be 'loss' or 'metric', got {kpi!r}")
        if kpi == "metric" and not metrics:
            raise ValueError("kpi='metric' needs metrics={task: metric name}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.kpi = kpi
        self.metrics = dict(metrics or {})
        self.alpha, self.gamma, self.eps = alpha, gamma, eps
        self.smoothed: Tensor | None = None

    task_state: ClassVar[Mapping[str, PerTask]] = {"smoothed": PerTask()}

    def on_bind(self) -> None:
        for task in self.metrics:
            if task not in self.task_names:
                raise KeyError(unknown_name_message("task in DTP metrics", task, self.task_names))
        if self.kpi == "metric":
            missing = [t for t in self.task_names if t not in self.metrics]
            if missing:
                raise KeyError(f"DTP metrics has no entry for task(s) {missing}")

    def _smooth(self, kpi: Tensor) -> None:
        kpi = kpi.clamp(self.eps, 1 - self.eps)
        if self.smoothed is None:
            self.smoothed = kpi
        else:
            previous = self.smoothed.to(kpi)
            moved = self.alpha * kpi + (1 - self.alpha) * previous
            # A task seen for the first time (NaN) starts from its KPI.
            self.smoothed = torch.where(torch.isnan(previous), kpi, moved)

    def loss_weights(self, losses: Tensor) -> Tensor:
        if self.kpi == "loss":
            self._smooth(torch.exp(-losses.detach()))
        if self.smoothed is None:
            return torch.full_like(losses, 1.0 / losses.numel())
        k = self.smoothed.to(losses)
        return -((1 - k) ** self.gamma) * torch.log(k) / losses.numel()

    def observe_metrics(self, metrics: dict[str, dict[str, float]]) -> None:
        if self.kpi != "metric":
            return
        values = []
        for task in self.task_names:
            value = float(metrics[task][self.metrics[task]])
            if not 0 <= value <= 1:
                raise ValueError(f"DTP needs KPIs in [0, 1]; {task}/{self.metrics[task]} = {value}")
            values.append(value)
        self._smooth(torch.tensor(values, dtype=torch.float64))

    def get_extra_state(self) -> dict[str, Any]:
        return {**super().get_extra_state(), "smoothed": self.smoothed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.smoothed = state["smoothed"]
