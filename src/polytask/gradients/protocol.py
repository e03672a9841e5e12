"""What the gradient engine expects of a balancer (implemented by ``polytask.balancers``).

The engine dispatches on ``needs`` and never imports the balancers package, which sits above
it in the layering.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Literal, Protocol, runtime_checkable

from torch import Tensor

from polytask.tasks.task import Role

Need = Literal["losses", "gramian", "jacobian"]
Level = Literal["representation", "parameter"]
LEVELS: tuple[Level, ...] = ("representation", "parameter")


@runtime_checkable
class BalancerProtocol(Protocol):
    """The interface :func:`polytask.backward` calls.

    ``needs == "losses"``: :meth:`loss_weights` then :meth:`objective` are used;
    ``"gramian"``: :meth:`gramian_weights`; ``"jacobian"``: :meth:`aggregate` and
    :meth:`head_weights`.
    """

    @property
    def needs(self) -> Need:
        """What the method consumes: ``losses``, ``gramian`` or ``jacobian``."""
        ...

    def check_level(self, level: Level | None) -> None:
        """Raise if the method cannot run at ``level`` (``None``: no gradients given)."""

    def bind(
        self,
        names: Sequence[str],
        roles: dict[str, Role] | None = None,
        prior_weights: dict[str, float] | None = None,
    ) -> None:
        """Bind to (or check) the task names, roles and prior weights."""

    def restricted(self, present: Sequence[int]) -> AbstractContextManager[None]:
        """A block in which the balancer sees only the tasks at positions ``present`` (the
        tasks with a label in the batch); absent tasks' state is left untouched."""
        ...

    def after_backward(self) -> None:
        """Called after each step (a learnt balancer checks it is being trained)."""

    def loss_weights(self, losses: Tensor) -> Tensor:
        """Weights ``(T,)`` from the detached losses ``(T,)``; called once per step (a
        stateful method updates its state here)."""
        ...

    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        """Scalar to differentiate from the loss vector ``(T,)`` and this step's weights."""
        ...

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """Weights ``(T,)`` from the Gramian ``(T, T)`` and the detached losses ``(T,)``."""
        ...

    def aggregate(self, jacobian: Tensor) -> Tensor:
        """Shared direction ``(P,)`` from the Jacobian ``(T, P)``."""
        ...

    def head_task_weights(self, weights: Tensor) -> Tensor:
        """Weights for the task-specific parameters of a Gramian method, from its weights."""
        ...

    def head_weights(self, losses: Tensor) -> Tensor:
        """Weights ``(T,)`` for the task-specific parameters of a Jacobian method."""
        ...
