"""Loss weightings with one learnt value per task, sized when the balancer is bound."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from polytask.balancers._restrict import PerTask
from polytask.balancers.base import LossWeighting


class LearntPerTask(LossWeighting):
    """A loss weighting whose state is a learnt vector ``(T,)`` (the parameter named by
    :attr:`parameter`), trained with the model by the optimizer.

    The vector is created when the balancer is bound to its tasks (``create(name,
    tasks=...)``, or the first :func:`polytask.backward`), or at construction when
    ``num_tasks`` is given. Put ``balancer.parameters()`` in the optimizer, without weight
    decay (:func:`polytask.training.build_optimizer` and the ``Trainer`` do); a balancer whose
    parameters get gradients but never change raises within ten steps
    (:meth:`~polytask.balancers.Balancer.after_backward`).
    """

    parameter: ClassVar[str] = "values"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The learnt vector is the per-task state (absent tasks' entries untouched).
        cls.task_state = {cls.parameter: PerTask()}

    def __init__(self, num_tasks: int | None = None, init: float = 0.0) -> None:
        super().__init__()
        self.init = float(init)
        self.register_parameter(self.parameter, None)
        if num_tasks is not None:
            if num_tasks < 1:
                raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
            self._create(num_tasks)

    def _create(self, T: int) -> None:
        setattr(self, self.parameter, nn.Parameter(torch.full((T,), self.init)))

    def values(self) -> Tensor:
        """The learnt vector ``(T,)`` (of the present tasks during a restricted step)."""
        value = getattr(self, self.parameter)
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__} is not bound to its tasks yet; create it with "
                "polytask.balancers.create(name, tasks=...) before building the optimizer"
            )
        out: Tensor = value
        return out

    def on_bind(self) -> None:
        value = getattr(self, self.parameter)
        if value is None:
            self._create(self.num_tasks)
        elif value.numel() != self.num_tasks:
            raise ValueError(
                f"{type(self).__name__} was built for {value.numel()} tasks, got {self.num_tasks}"
            )

    def _load_from_state_dict(self, state: dict[str, Any], prefix: str, *args: Any) -> None:
        # A checkpoint of a bound balancer into an unbound one: size the vector first.
        key = prefix + self.parameter
        if getattr(self, self.parameter) is None and key in state:
            self._create(int(state[key].numel()))
        super()._load_from_state_dict(state, prefix, *args)
