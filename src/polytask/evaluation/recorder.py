"""A balancer wrapper that records every step's losses and Gramian for the diagnosis."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from polytask.balancers.base import Balancer, LossWeighting
from polytask.evaluation.diagnosis import Recording
from polytask.gradients.protocol import Level
from polytask.tasks.task import Role


class RecordingBalancer(Balancer):
    """Trains exactly as ``inner`` does while recording each step's task losses and the
    Gramian of the task gradients (at the level the engine runs at) into :attr:`recording`.

    ``inner`` may be a loss weighting whose objective is the weighted sum of the losses
    (``equal``, ``fixed``, ``dwa`` ...) or a Gramian method; the engine then computes the
    Gramian for every step, which a loss weighting alone would not need (a diagnosis run costs
    a Gramian method's step).

    Raises:
        ValueError: ``inner`` needs the full Jacobian, or its objective is not
            ``sum_t w_t L_t`` (uncertainty weighting, IMTL-L): recording the
            Gramian would change how it trains.
    """

    needs = "gramian"

    def __init__(self, inner: Balancer, level: Level) -> None:
        super().__init__()
        name = type(inner).__name__
        if inner.needs == "jacobian":
            raise ValueError(f"the diagnosis cannot record {name}: it needs the full Jacobian")
        if inner.needs == "losses" and type(inner).objective is not LossWeighting.objective:
            raise ValueError(
                f"the diagnosis cannot record {name}: its objective is not the weighted sum "
                "of the losses; diagnose with a plain weighting (the default, equal)"
            )
        self.inner = inner
        self.levels = inner.levels if inner.needs == "gramian" else (level,)  # type: ignore[misc]
        self.recording: Recording | None = None
        self.level = level

    def on_bind(self) -> None:
        self.recording = Recording(list(self.task_names), self.level)

    def bind(
        self,
        names: Sequence[str],
        roles: dict[str, Role] | None = None,
        prior_weights: dict[str, float] | None = None,
    ) -> None:
        self.inner.bind(names, roles, prior_weights)
        super().bind(names, roles, prior_weights)

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        assert self.recording is not None
        self.recording.add(losses, gramian)
        if self.inner.needs == "losses":
            return self.inner.loss_weights(losses)
        return self.inner.gramian_weights(gramian, losses)

    def head_task_weights(self, weights: Tensor) -> Tensor:
        return self.inner.head_task_weights(weights)

    def epoch_end(self) -> None:
        self.inner.epoch_end()
