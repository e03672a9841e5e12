"""The model registry: ``create(name, **options)``, ``available()``, ``describe()``."""

from __future__ import annotations

from typing import Any

from polytask._registry import Registry
from polytask.models.base import MultiTaskModel

MODELS: Registry[MultiTaskModel] = Registry("model")
register = MODELS.register


def create(name: str, *, input_layer: Any = None, **options: Any) -> MultiTaskModel:
    """Build the architecture registered as ``name``.

    ``input_layer`` puts any architecture behind an input layer shared by all tasks: a
    :class:`~polytask.models.FeatureSchema` (or its configuration ``{"sparse": [...],
    "sequence": [...], "dense": [...]}``) for recommendation features, or a module with an
    ``output_dim`` attribute; the model's ``input_dim`` is then set to that width.

    Example:
        >>> import polytask
        >>> m = polytask.models.create("shared_bottom", heads={"a": 1, "b": 3}, input_dim=8)
        >>> sorted(m(__import__("torch").zeros(2, 8)).predictions)
        ['a', 'b']
    """
    given = {**options, **({"input_layer": input_layer} if input_layer is not None else {})}
    if input_layer is None:
        model = MODELS.create(name, **options)
    else:
        from polytask.models.input_layer import WithInputLayer, build_input_layer

        layer = build_input_layer(input_layer)
        if "input_dim" in MODELS.get(name).options():
            options.setdefault("input_dim", layer.output_dim)
        model = WithInputLayer(MODELS.create(name, **options), layer)
    # How to build it again (polytask.load_run), when the options are plain data.
    spec = {"name": name, "options": given} if _is_plain_data(given) else None
    model.__dict__["build_spec"] = spec  # a plain attribute, not a module or parameter
    return model


def _is_plain_data(value: Any) -> bool:
    """Whether ``value`` is made of numbers, strings, booleans, None, lists and dicts only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_data(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_plain_data(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def available() -> list[str]:
    """Names of every registered architecture."""
    return MODELS.available()


def describe() -> list[dict[str, Any]]:
    """One row per architecture: name, title (architecture and paper), summary and options
    with defaults."""
    return [
        {
            "name": e.name,
            "title": e.title,
            "summary": e.summary,
            "options": {**e.options(), "input_layer": None},  # accepted by create()
        }
        for e in MODELS
    ]
