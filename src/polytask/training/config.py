"""Typed configuration: dataclasses built from YAML with checked types and ``key=value``
overrides; unknown keys are errors that name the closest valid key."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from polytask._registry import unknown_name_message

C = TypeVar("C")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; names the key."""


class FieldError(ValueError):
    """A configuration dataclass's ``__post_init__`` rejects the value of ``field``;
    :func:`from_dict` turns it into a :class:`ConfigError` naming the dotted key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_range(
    field: str,
    value: float | None,
    *,
    low: float | None = None,
    above: float | None = None,
    optional: bool = False,
) -> None:
    """Raise :class:`FieldError` unless ``value >= low`` / ``value > above`` (``None``
    allowed when ``optional``), with a message giving the allowed range."""
    if value is None:
        if optional:
            return
        raise FieldError(field, "a value is required")
    bounds = []
    if low is not None:
        bounds.append(f">= {low:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    allowed = " and ".join(bounds) + (" (or null for none)" if optional else "")
    if (low is not None and not value >= low) or (above is not None and not value > above):
        raise FieldError(field, f"{value!r} is out of range; it must be {allowed}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        if len(errors) == 1:
            # One type (or null): its own message, which names the key and the fix; a plain
            # type mismatch says that null is allowed too ("an integer or null").
            if type(None) in options and errors[0].startswith(f"{where}: expected"):
                raise ConfigError(errors[0].replace(", got ", " or null, got ", 1))
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: {value!r} fits none of {[_type_name(o) for o in options]}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = get_args(tp)[:1] or (Any,)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        args = get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads 1e-4 (no dot) as a string; read numbers as a user writes them.
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported configuration type {tp}")


def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "") -> C:
    """Build dataclass ``cls`` from ``data``, checking every key and type.

    Raises:
        ConfigError: an unknown key (with the closest valid keys), a wrong type, or a
            missing required key; the message gives the dotted key.
    """
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            prefix = f"{where}." if where else ""
            raise ConfigError(
                unknown_name_message(
                    "configuration key", f"{prefix}{key}", [f"{prefix}{k}" for k in fields]
                )
            )
    kwargs = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"configuration key {key!r} is required")
    try:
        return cls(**kwargs)
    except FieldError as error:
        key = f"{where}.{error.field}" if where else error.field
        raise ConfigError(f"configuration key {key!r}: {error.message}") from error
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where or cls.__name__}: {error}") from error


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a configuration dataclass (for YAML and logs)."""
    result: dict[str, Any] = dataclasses.asdict(config)
    return result


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a": {"b": 1}, "c": ["x", "y"]}`` (values read as YAML)."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value (dotted keys allowed)")
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = yaml.safe_load(raw) if raw else ""
    return result


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key, everything else is replaced."""
    result = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping at the top level")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    """:func:`load_yaml`, with a relative ``dataset.options.source`` (the ``table`` data
    set's file) read relative to the file's folder, so a configuration and its table travel
    together (one given as an override stays relative to the working directory)."""
    data = load_yaml(path)
    options = (data.get("dataset") or {}).get("options")
    source = options.get("source") if isinstance(options, dict) else None
    if isinstance(source, str) and not Path(source).expanduser().is_absolute():
        options["source"] = str(Path(path).parent / source)  # type: ignore[index]
    return data
