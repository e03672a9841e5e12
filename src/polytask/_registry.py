"""A small name -> factory registry shared by balancers, models and datasets.

Names are lower_snake_case. A name that is not registered raises a ``KeyError`` that lists
the closest valid names, so a typo in a YAML file or a ``create`` call is fixed in one step.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownOptionError(TypeError):
    """An option that the registered factory does not take; the message lists the valid
    ones (a ``TypeError``, as Python's own for an unexpected keyword)."""


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    """Build the error text for a name that matches nothing.

    Args:
        kind: what the name was supposed to be ("balancer", "task", ...).
        name: the name that was given.
        valid: every valid name.

    Returns:
        A message naming the wrong name, the closest valid names and the full list.
    """
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid {kind} names: {', '.join(sorted(valid))}."


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory: its name, the callable, a summary (the first paragraph of
    its docstring) and a title (the first line of its module's docstring)."""

    name: str
    factory: Callable[..., T]
    summary: str
    title: str = ""

    def options(self) -> dict[str, Any]:
        """Keyword options of the factory with their defaults (``inspect.Parameter.empty``
        when an option is required)."""
        return dict(_signature(self.factory)[0])

    def accepts_any(self) -> bool:
        """Whether the factory takes ``**kwargs``."""
        return _signature(self.factory)[1]


@functools.cache
def _signature(factory: Callable[..., Any]) -> tuple[tuple[tuple[str, Any], ...], bool]:
    """A factory's keyword options with defaults, and whether it takes ``**kwargs``, read
    once (``inspect.signature`` costs ~0.1 ms, and clients build models every round)."""
    parameters = inspect.signature(factory).parameters.values()
    options = tuple(
        (p.name, p.default)
        for p in parameters
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    )
    return options, any(p.kind == p.VAR_KEYWORD for p in parameters)


class Registry(Generic[T]):
    """A mapping from lower_snake_case names to factories of ``T``.

    Example:
        >>> reg: Registry[int] = Registry("number")
        >>> @reg.register("three")
        ... def three() -> int:
        ...     '''The number three.'''
        ...     return 3
        >>> reg.create("three")
        3
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name`` (must be lower_snake_case)."""
        if not name.replace("_", "").isalnum() or name.lower() != name:
            raise ValueError(f"{self.kind} name {name!r} must be lower_snake_case")

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = inspect.getdoc(factory) or ""
            first_paragraph = doc.strip().split("\n\n")[0]
            summary = " ".join(first_paragraph.split())
            module_doc = inspect.getdoc(sys.modules.get(factory.__module__)) or ""
            title = module_doc.strip().split("\n")[0] if module_doc.strip() else summary
            self._entries[name] = Entry(name, factory, summary, title)
            return factory

        return decorate

    def get(self, name: str) -> Entry[T]:
        """The entry registered under ``name``; ``KeyError`` with close matches otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(unknown_name_message(self.kind, name, list(self._entries))) from None

    def create(self, name: str, **options: Any) -> T:
        """Build the object registered under ``name`` with keyword ``options``.

        Unknown options raise a ``TypeError`` naming the valid ones.
        """
        entry = self.get(name)
        valid = entry.options()
        if not entry.accepts_any():
            for key in options:
                if key not in valid:
                    raise UnknownOptionError(
                        unknown_name_message(f"option of {self.kind} {name!r}", key, list(valid))
                    )
        return entry.factory(**options)

    def available(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in self.available())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
