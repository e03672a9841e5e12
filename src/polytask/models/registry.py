"""The model registry: ``create(name, **options)``, ``available()``, ``describe()``."""

from __future__ import annotations

from typing import Any

from polytask._registry import Registry
from polytask.models.base import MultiTaskModel

MODELS: Registry[MultiTaskModel] = Registry("model")
register = MODELS.register


def create(name: str, **options: Any) -> MultiTaskModel:
    """Build the architecture registered as ``name``.

    Example:
        >>> import polytask
        >>> m = polytask.models.create("shared_bottom", heads={"a": 1, "b": 3}, input_dim=8)
        >>> sorted(m(__import__("torch").zeros(2, 8)).predictions)
        ['a', 'b']
    """
    return MODELS.create(name, **options)


def available() -> list[str]:
    """Names of every registered architecture."""
    return MODELS.available()


def describe() -> list[dict[str, Any]]:
    """One row per architecture: name, summary and options with defaults."""
    return [{"name": e.name, "summary": e.summary, "options": e.options()} for e in MODELS]
