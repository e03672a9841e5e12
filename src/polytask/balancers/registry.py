"""The balancer registry: ``create(name, **options)``, ``available()``, ``describe()``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polytask._registry import Registry
from polytask.balancers.base import Balancer
from polytask.tasks.task import Task

BALANCERS: Registry[Balancer] = Registry("balancer")
register = BALANCERS.register


def create(
    name: str, tasks: Sequence[Task] | Sequence[str] | None = None, **options: Any
) -> Balancer:
    """Build the balancer registered as ``name`` (``equal``, ``mgda``, ``pcgrad`` ...).

    With ``tasks`` (a :class:`~polytask.TaskSet`, tasks or task names) the balancer is bound
    to them at once, so that a method with learnt per-task parameters (``uncertainty``,
    ``imtl_l``) has them before you build the optimizer.

    Example:
        >>> import polytask
        >>> polytask.balancers.create("pcgrad", seed=0).needs
        'gramian'
        >>> len(list(polytask.balancers.create("uncertainty", tasks=["a", "b"]).parameters()))
        1
    """
    balancer = BALANCERS.create(name, **options)
    if tasks is not None:
        balancer.bind_tasks(tasks)
    return balancer


def available() -> list[str]:
    """Names of every registered balancer."""
    return BALANCERS.available()


def name_of(balancer: object) -> str:
    """The registry name of ``balancer``'s class (``mgda``), or the class name for a class of
    your own."""
    cls = type(balancer)
    return next((e.name for e in BALANCERS if e.factory is cls), cls.__name__)


def with_property(name: str) -> list[str]:
    """Names of the registered balancers that declare property ``name`` (see
    :data:`polytask.testing.PROPERTIES`; checked for each of them by
    :func:`polytask.testing.check_balancer`)."""
    return [e.name for e in BALANCERS if name in getattr(e.factory, "properties", ())]


def describe() -> list[dict[str, Any]]:
    """One row per balancer: name, summary, needs, levels, roles, options with defaults."""
    rows = []
    for entry in BALANCERS:
        cls = entry.factory
        needs = getattr(cls, "needs", "losses")
        rows.append(
            {
                "name": entry.name,
                "summary": entry.summary,
                "needs": needs,
                "levels": "-" if needs == "losses" else ", ".join(getattr(cls, "levels", ())),
                "roles": bool(getattr(cls, "uses_roles", False)),
                "options": {k: v for k, v in entry.options().items()},
            }
        )
    return rows
