"""Balancer base classes: loss weighting, Gramian weighting, Jacobian aggregation.

Semantics shared by every method (stated once, here):

- A balancer turns the task losses (and, for gradient methods, the task gradients) into one
  update. For a loss weighting or a Gramian weighting that update is the gradient of the
  weighted sum ``sum_t w_t L_t``, taken by one ordinary backward: the trunk and **every task
  head get the same weights** (head ``t`` receives ``w_t dL_t/dtheta_t``).
- Weights are on the scale of the **mean**: equal weighting is ``w_t = 1/T``, and a method whose
  paper sums task gradients (PCGrad, for one) is divided by ``T``, so that every method gives
  the mean gradient when the tasks agree and learning rates carry over between methods.
- **Heads.** A loss weighting's weights scale the heads too (the objective is one weighted
  sum). A gradient method's weights are for the *shared* part only: under a Gramian weighting
  or a Jacobian aggregation, head ``t`` receives ``(1/T) dL_t/dtheta_t``, the gradient of the
  mean loss, whatever the shared weights are (huge, zero or negative weights, which
  degenerate Gramians produce, never reach a head). This is the papers' own rule (MGDA,
  PCGrad and CAGrad update task-specific parameters by their own task's gradient) on the
  mean scale. A method overrides :meth:`Balancer.head_task_weights` only where its paper
  trains heads differently, and then still with weights that do not depend on the shared
  ones.
- **Absent tasks.** A task with no labelled sample in the batch is absent from the step
  (:attr:`polytask.TaskLosses.present`): :func:`polytask.backward` runs the method on the
  present tasks only (``T`` above is then their number), gives absent tasks weight 0, and
  leaves their entries of the method's state untouched. Each method declares its per-task
  state in :attr:`Balancer.task_state` for this (:mod:`polytask.balancers._restrict`). A
  *present* task whose gradient happens to be zero is not absent: the method's own
  mathematics applies to it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from polytask.balancers._restrict import PerTask, restricted
from polytask.gradients.protocol import LEVELS, Level, Need
from polytask.tasks.task import Role, Task

UNTRAINED_STEPS = 10
"""Steps after which a learnt balancer whose parameters never changed raises
(:meth:`Balancer.after_backward`)."""


class Balancer(nn.Module):
    """Common base: the tasks a balancer is bound to, what it needs, where it can run.

    Class attributes:
        needs: ``"losses"``, ``"gramian"`` or ``"jacobian"``.
        levels: gradient levels at which the method is defined (gradient methods only).
        uses_roles: whether the method reads ``Task.role`` (main/auxiliary).
        task_state: ``{attribute path: PerTask}``: every attribute indexed by task (histories,
            learnt weights, per-task options given as sequences), so that a step with absent
            tasks leaves their entries untouched (:meth:`restricted`).
        properties: the properties the method guarantees, by name
            (:data:`polytask.testing.PROPERTIES` says what each means); the shared checks
            (:func:`polytask.testing.check_balancer`) test every registered method on exactly
            these, and ``docs/balancers.md`` lists them.

    A balancer is an ``nn.Module`` so that learnable weights (uncertainty weighting) and
    histories live in its ``state_dict``; it binds to the task names on its first call and
    refuses later calls with other tasks.
    """

    needs: ClassVar[Need] = "losses"
    levels: ClassVar[tuple[Level, ...]] = LEVELS
    uses_roles: ClassVar[bool] = False
    task_state: ClassVar[Mapping[str, PerTask]] = {}
    properties: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.task_names: list[str] = []
        # While restricted to the present tasks: every bound task name (else None).
        self.bound_task_names: list[str] | None = None
        # after_backward's one check that learnt parameters are being trained.
        self._learning_snapshot: list[Tensor] | None = None
        self._learning_checked = False
        self._learning_waited = 0
        self.roles: dict[str, Role] = {}
        self.prior_weights: dict[str, float] = {}

    @property
    def num_tasks(self) -> int:
        """Number of bound tasks (0 before the first call)."""
        return len(self.task_names)

    def bind(
        self,
        names: Sequence[str],
        roles: dict[str, Role] | None = None,
        prior_weights: dict[str, float] | None = None,
    ) -> None:
        """Bind to the task names (first call) or check they are the same (later calls)."""
        names = list(names)
        if not self.task_names:
            self.task_names = names
            self.on_bind()
        elif names != self.task_names:
            raise ValueError(
                f"{type(self).__name__} was bound to tasks {self.task_names} and now got "
                f"{names}; create a new balancer for a different task set"
            )
        self.roles = dict(roles or dict.fromkeys(names, "main"))
        self.prior_weights = dict(prior_weights or dict.fromkeys(names, 1.0))

    def bind_tasks(self, tasks: Sequence[Task] | Sequence[str]) -> None:
        """:meth:`bind` to tasks (their names, roles and prior weights) or task names."""
        items = list(tasks)
        named = [t for t in items if isinstance(t, Task)]
        if named and len(named) == len(items):
            roles = {t.name: t.role for t in named}
            self.bind([t.name for t in named], roles, {t.name: t.weight for t in named})
            auxiliary = [t for t, r in roles.items() if r == "auxiliary"]
            if auxiliary and not self.uses_roles:
                from polytask.balancers.registry import BALANCERS, name_of

                users = [e.name for e in BALANCERS if getattr(e.factory, "uses_roles", False)]
                warnings.warn(
                    f"{name_of(self)} ignores the role of the task(s) {auxiliary} (auxiliary): it "
                    "weighs every task alike. Balancers that use roles: "
                    f"{', '.join(users)}",
                    UserWarning,
                    stacklevel=3,
                )
        else:
            self.bind([str(t) for t in items])

    def on_bind(self) -> None:
        """Hook for subclasses that size their state by the number of tasks."""

    def after_backward(self) -> None:
        """Called by :func:`polytask.backward` after each step. A balancer with learnt
        parameters checks that the optimizer moves them: from the first step where they have
        a gradient, it compares them with that step's values at each following step (one
        device read each) until they have changed. If they are still unchanged after
        :data:`UNTRAINED_STEPS` steps, they are in no optimizer, and it raises. (Several
        steps, not one: a gradient scaler skips the first steps of fp16 training.) Without
        parameters this does nothing."""
        if self._learning_checked:
            return
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            self._learning_checked = True
            return
        if self._learning_snapshot is None:
            if any(p.grad is not None and bool(p.grad.any()) for p in params):
                self._learning_snapshot = [p.detach().clone() for p in params]
                self._learning_waited = 0
            return
        pairs = zip(params, self._learning_snapshot, strict=True)
        if not all(torch.equal(p.detach(), old) for p, old in pairs):
            self._learning_checked, self._learning_snapshot = True, None
            return
        self._learning_waited += 1
        if self._learning_waited >= UNTRAINED_STEPS:
            self._learning_checked = True
            raise ValueError(
                f"{type(self).__name__} learns weights of its own, but its parameters got "
                f"gradients and did not change in {UNTRAINED_STEPS} steps: they are in no "
                "optimizer. Build the balancer with polytask.balancers.create(name, "
                "tasks=tasks) and put its parameters in your optimizer, e.g. "
                "torch.optim.Adam([*model.parameters(), *balancer.parameters()]) "
                "(polytask.training.build_optimizer does this, without weight decay for them)"
            )

    @classmethod
    def example_options(cls, num_tasks: int) -> dict[str, Any]:
        """Constructor options that build a working instance for ``num_tasks`` tasks, for
        the shared checks (:func:`polytask.testing.check_balancer`); ``{}`` when the defaults
        do. A method with a required or task-sized option overrides this."""
        return {}

    @contextmanager
    def restricted(self, present: Sequence[int]) -> Iterator[None]:
        """A block in which the balancer sees only the tasks at positions ``present`` of its
        bound task order: ``task_names`` and every attribute in :attr:`task_state` are
        sliced to them, and written back afterwards (absent tasks' entries unchanged; all of
        the state restored if the block raises). Used by :func:`polytask.backward` for a
        batch in which some tasks have no label."""
        with restricted(self, present):
            yield

    def check_level(self, level: Level | None) -> None:
        """Raise if the method is not defined at ``level``."""
        name = type(self).__name__
        if self.needs == "losses":
            return
        if level is None:
            raise ValueError(
                f"{name} needs per-task gradients: pass features=outputs.features "
                "(representation level) or shared_params=model.shared_parameters() "
                "(parameter level) to polytask.backward"
            )
        if level not in self.levels:
            raise ValueError(
                f"{name} is defined at the {' and '.join(self.levels)} level only, not the "
                f"{level} level"
            )

    # The engine's interface (gradients.protocol.BalancerProtocol); each family overrides its own.
    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        """Scalar to differentiate (loss weightings)."""
        raise NotImplementedError(f"{type(self).__name__} is not a loss weighting")

    def loss_weights(self, losses: Tensor) -> Tensor:
        """Weights from the losses (loss weightings)."""
        raise NotImplementedError(f"{type(self).__name__} is not a loss weighting")

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """Weights from the Gramian (Gramian weightings)."""
        raise NotImplementedError(f"{type(self).__name__} is not a Gramian weighting")

    def aggregate(self, jacobian: Tensor) -> Tensor:
        """Direction from the Jacobian (Jacobian aggregations)."""
        raise NotImplementedError(f"{type(self).__name__} is not a Jacobian aggregation")

    def head_weights(self, losses: Tensor) -> Tensor:
        """Weights of the task losses for the task-specific parameters (Jacobian methods):
        ``1/T`` each (the head rule in this module's docstring)."""
        return torch.full_like(losses, 1.0 / losses.numel())

    def head_task_weights(self, weights: Tensor) -> Tensor:
        """Weights of the task losses for the task-specific parameters of a Gramian method,
        given its weights ``(T,)`` for the shared part: ``1/T`` each, whatever the shared
        weights (the head rule in this module's docstring). A method overrides this only
        where its paper trains heads differently, with weights that stay bounded."""
        return torch.full_like(weights, 1.0 / weights.numel())

    def epoch_end(self) -> None:
        """Called by the trainer after every epoch (methods with per-epoch state, e.g. DWA)."""

    def observe_metrics(self, metrics: dict[str, dict[str, float]]) -> None:
        """Called by the trainer with each validation result ``{task: {metric: value}}``
        (methods driven by a performance indicator, e.g. DTP)."""

    def get_extra_state(self) -> dict[str, Any]:
        return {"task_names": list(self.task_names)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.task_names = list(state.get("task_names", []))


class LossWeighting(Balancer):
    """A method that weights the losses and needs nothing else.

    Subclasses implement :meth:`loss_weights`; :meth:`objective` is ``sum_t w_t L_t`` unless a
    method adds terms (uncertainty weighting's regulariser).
    """

    needs: ClassVar[Need] = "losses"

    def loss_weights(self, losses: Tensor) -> Tensor:
        """Task weights ``(T,)`` from the detached loss vector ``(T,)``."""
        raise NotImplementedError

    def objective(self, losses: Tensor, weights: Tensor) -> Tensor:
        """The scalar to differentiate: ``sum_t w_t L_t`` from the loss vector ``(T,)`` (with
        history) and this step's weights ``(T,)`` (from :meth:`loss_weights`)."""
        return (weights.to(losses.dtype) * losses).sum()


class GramianWeighting(Balancer):
    """A gradient method that is a function of the Gramian ``G = J J^T`` (``T x T``).

    Subclasses implement :meth:`gramian_weights`. The update is the gradient of ``sum_t w_t L_t``,
    i.e. the direction ``J^T w``, taken by one backward.
    """

    needs: ClassVar[Need] = "gramian"

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """Task weights ``(T,)`` from the Gramian ``(T, T)`` and the detached losses ``(T,)``."""
        raise NotImplementedError


class JacobianAggregation(Balancer):
    """A gradient method that needs the Jacobian's coordinates (GradDrop).

    Subclasses implement :meth:`aggregate`; :meth:`head_weights` sets how the heads are
    trained (the mean by default).
    """

    needs: ClassVar[Need] = "jacobian"

    def aggregate(self, jacobian: Tensor) -> Tensor:
        """The shared direction ``(P,)`` from the Jacobian ``(T, P)``."""
        raise NotImplementedError
