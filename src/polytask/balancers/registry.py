"""The balancer registry: ``create(name, **options)``, ``available()``, ``describe()``."""

from __future__ import annotations

from typing import Any

from polytask._registry import Registry
from polytask.balancers.base import Balancer

BALANCERS: Registry[Balancer] = Registry("balancer")
register = BALANCERS.register


def create(name: str, **options: Any) -> Balancer:
    """Build the balancer registered as ``name`` (``equal``, ``mgda``, ``pcgrad`` ...).

    Example:
        >>> import polytask
        >>> polytask.balancers.create("pcgrad", seed=0).needs
        'gramian'
    """
    return BALANCERS.create(name, **options)


def available() -> list[str]:
    """Names of every registered balancer."""
    return BALANCERS.available()


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
