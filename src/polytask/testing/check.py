"""``check_balancer``: every check a balancer must pass, from what it declares.

The checks, for any registered method or a user's own class (as scikit-learn's
``check_estimator`` does for estimators):

- finite output on every generated Jacobian (:mod:`polytask.testing.inputs`), for 2, 5 and 8
  tasks: all ranks,
  zero, duplicated, opposed and nearly duplicated rows, scales 0 to 1e15, float32 and
  float64 - no exception, no NaN;
- each property in the class's ``properties`` (:data:`polytask.testing.PROPERTIES`), on the
  same inputs;
- ``state_dict`` round trip: a copy loaded from the state continues with the same weights;
- levels: the engine refuses the levels the method does not declare, and runs the others;
- the absent-task rule: an absent task gets weight 0 and its entries of the method's state
  do not change; a stateless method decides among the present tasks exactly as it would
  with only those tasks;
- the head rule: the heads' weights stay bounded and do not depend on the shared weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import polytask
from polytask.balancers import BALANCERS, Balancer
from polytask.gradients.protocol import LEVELS
from polytask.tasks.taskset import TaskLosses
from polytask.testing.inputs import JacobianCase, jacobian_cases, make_jacobian
from polytask.testing.properties import PROPERTIES, Factory, bound, direction, losses_of


def factory(method: str | type[Balancer], **options: Any) -> Factory:
    """``T -> fresh balancer``: the registered name or class with ``options`` over the
    class's :meth:`~polytask.balancers.Balancer.example_options` for ``T`` tasks."""
    cls = BALANCERS.get(method).factory if isinstance(method, str) else method
    examples = getattr(cls, "example_options", None)

    def make(T: int) -> Balancer:
        defaults = examples(T) if examples is not None else {}
        balancer: Balancer = cls(**{**defaults, **options})
        return balancer

    return make


def _outcome(make: Factory, J: Tensor) -> Tensor:
    """What the method makes of ``J``: its direction, or its loss weights."""
    balancer = make(J.shape[0])
    if balancer.needs == "losses":
        return bound(balancer, J.shape[0]).loss_weights(losses_of(J))
    return direction(balancer, J, losses_of(J))


TASK_COUNTS = (2, 5, 8)
"""Numbers of tasks the finite and property checks run at (2 reaches closed forms)."""


def _cases() -> Iterator[JacobianCase]:
    for T in TASK_COUNTS:
        yield from jacobian_cases(T)


def check_finite(make: Factory) -> list[str]:
    """Failures of the finite-output check over every generated Jacobian."""
    failures = []
    for case in _cases():
        try:
            out = _outcome(make, case.jacobian)
        except Exception as error:  # every exception is a failure to report
            failures.append(f"finite [{case}]: raised {type(error).__name__}: {error}")
            continue
        if not bool(torch.isfinite(out).all()):
            failures.append(f"finite [{case}]: non-finite result {out.tolist()}")
    return failures


def check_properties(make: Factory) -> list[str]:
    """Failures of the declared properties over every generated Jacobian."""
    probe = make(TASK_COUNTS[0])
    failures = []
    for name in sorted(type(probe).properties):
        prop = PROPERTIES.get(name)
        if prop is None:
            failures.append(f"declares unknown property {name!r}; known: {sorted(PROPERTIES)}")
            continue
        if probe.needs not in prop.families:
            failures.append(f"declares {name!r}, which does not apply to needs={probe.needs!r}")
            continue
        for case in _cases():
            try:
                message = prop.check(make, case.jacobian)
            except Exception as error:
                message = f"raised {type(error).__name__}: {error}"
            if message is not None:
                failures.append(f"{name} [{case}]: {message}")
    return failures


def _scalar_step(
    balancer: Balancer, J: Tensor, level: str | None, present: list[bool] | None = None
) -> Tensor | None:
    """One ``polytask.backward`` on losses ``L_t = softplus(<J_t, f>) + 0.1`` of a leaf
    ``f``; returns the weights."""
    f = torch.zeros(J.shape[1], dtype=J.dtype, requires_grad=True)
    values = {f"t{i}": F.softplus(row @ f) + 0.1 for i, row in enumerate(J)}
    losses = TaskLosses(values, present=present)
    where: dict[str, Any] = {}
    if balancer.needs != "losses":
        where = {"features": f} if level == "representation" else {"shared_params": [f]}
    weights = polytask.backward(losses, balancer, **where).weights
    for p in balancer.parameters():  # a learnt balancer's optimizer: one SGD step
        if p.grad is not None:
            p.data.sub_(0.01 * p.grad)
            p.grad = None
    return weights


def _level(balancer: Balancer) -> str | None:
    return None if balancer.needs == "losses" else balancer.levels[0]


def _steps(balancer: Balancer, count: int, T: int, seed: int) -> None:
    for k in range(count):
        _scalar_step(balancer, make_jacobian("full", T, 7, seed + k), _level(balancer))
        balancer.epoch_end()


def check_state(make: Factory, T: int = 5) -> list[str]:
    """Failure of the ``state_dict`` round trip, if any."""
    original = make(T)
    _steps(original, 3, T, seed=1)
    copy = make(T)
    copy.load_state_dict(original.state_dict())
    J = make_jacobian("full", T, 7, seed=9)
    a = _scalar_step(original, J, _level(original))
    b = _scalar_step(copy, J, _level(copy))
    assert a is not None and b is not None
    if not torch.allclose(a, b, rtol=1e-12, atol=0.0):
        return [f"state round trip: {a.tolist()} after, {b.tolist()} from the loaded copy"]
    return []


def check_levels(make: Factory, T: int = 3) -> list[str]:
    """Failures of the level checks (refusal of undeclared levels, running the others)."""
    failures = []
    J = make_jacobian("full", T, 7, seed=2)
    for level in LEVELS:
        balancer = make(T)
        supported = balancer.needs == "losses" or level in balancer.levels
        try:
            weights = _scalar_step(balancer, J, level)
        except ValueError as error:
            if supported or "level only" not in str(error):
                failures.append(f"level {level}: {error}")
            continue
        if not supported:
            failures.append(f"level {level}: ran, but the method does not declare it")
        elif weights is None or not bool(torch.isfinite(weights).all()):
            failures.append(f"level {level}: weights {weights}")
    return failures


def _tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every tensor in a (nested) state, with its path."""
    if isinstance(value, Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}[{i}]")


def _state(balancer: Balancer) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in _tensors(balancer.state_dict())}


def _task_slices(tensor: Tensor, T: int, k: int) -> Iterator[Tensor]:
    for axis, size in enumerate(tensor.shape):
        if size == T:
            yield tensor.select(axis, k)


def check_absent(make: Factory, T: int = 5, absent: int = 2) -> list[str]:
    """Failures of the absent-task rule."""
    failures = []
    present = [i != absent for i in range(T)]
    balancer = make(T)
    _steps(balancer, 3, T, seed=3)
    before = _state(balancer)
    weights = _scalar_step(balancer, make_jacobian("full", T, 7, seed=7), _level(balancer), present)
    if weights is None or float(weights[absent]) != 0.0:
        failures.append(f"absent task: weight {None if weights is None else weights.tolist()}")
    after = _state(balancer)
    for key, old in before.items():
        new = after.get(key)
        if new is None or new.shape != old.shape:
            continue
        for a, b in zip(_task_slices(old, T, absent), _task_slices(new, T, absent), strict=True):
            if not torch.equal(a.nan_to_num(math.pi), b.nan_to_num(math.pi)):
                failures.append(f"absent task: state {key!r} changed at the absent task")
                break
    cls = type(balancer)
    if not cls.example_options(T):  # same options for T and T - 1 tasks: compare
        J = make_jacobian("full", T, 7, seed=11)
        restricted = _scalar_step(make(T), J, _level(balancer), present)
        alone = _scalar_step(make(T - 1), J[torch.tensor(present)], _level(balancer))
        assert restricted is not None and alone is not None
        if not torch.allclose(restricted[torch.tensor(present)], alone, rtol=1e-9, atol=1e-12):
            failures.append(
                f"absent task: weights {restricted.tolist()} differ from the present tasks' "
                f"alone {alone.tolist()}"
            )
    return failures


def check_heads(make: Factory, T: int = 5) -> list[str]:
    """Failures of the head rule (gradient methods)."""
    balancer = bound(make(T), T)
    if balancer.needs != "gramian":
        return []
    shared = [
        torch.full((T,), 1.0 / T, dtype=torch.float64),
        torch.zeros(T, dtype=torch.float64),
        torch.tensor([4.4e14, *([0.0] * (T - 1))], dtype=torch.float64),
        torch.tensor([-3.3e6, *([1.0] * (T - 1))], dtype=torch.float64),
    ]
    heads = [balancer.head_task_weights(w) for w in shared]
    first = heads[0]
    for w, h in zip(shared, heads, strict=True):
        if not bool(torch.isfinite(h).all()) or float(h.abs().max()) > 1.0:
            return [f"heads: weights {h.tolist()} for shared weights {w.tolist()}"]
        if not torch.equal(h, first):
            return [f"heads: weights depend on the shared weights ({w.tolist()} -> {h.tolist()})"]
    return []


CHECKS: dict[str, Callable[[Factory], list[str]]] = {
    "finite": check_finite,
    "properties": check_properties,
    "state": check_state,
    "levels": check_levels,
    "absent": check_absent,
    "heads": check_heads,
}
"""Every check :func:`check_balancer` runs, by name."""


def check_balancer(method: str | type[Balancer], **options: Any) -> None:
    """Run every check of this module on a balancer; raise ``AssertionError`` listing all
    failures.

    Args:
        method: a registered name (``"mgda"``) or a :class:`~polytask.balancers.Balancer`
            subclass (your own method).
        options: constructor options (over the class's ``example_options``).

    Example:
        >>> from polytask.testing import check_balancer
        >>> check_balancer("upgrad")   # silent when every check passes
    """
    make = factory(method, **options)
    failures = [f"{name}: {f}" for name, check in CHECKS.items() for f in check(make)]
    if failures:
        shown = "\n  ".join(failures[:40])
        more = f"\n  ... and {len(failures) - 40} more" if len(failures) > 40 else ""
        raise AssertionError(f"{len(failures)} check(s) failed:\n  {shown}{more}")
