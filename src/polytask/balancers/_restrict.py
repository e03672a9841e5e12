"""Running a balancer on the tasks present in a batch, leaving the absent tasks' state alone.

A balancer declares which of its attributes are indexed by task (:class:`PerTask`: the
attribute's dotted path, the axes that run over tasks, the value that stands for "not seen
yet"). :func:`restricted` replaces each such attribute by its slice for the present tasks,
lets the method run as if only those tasks existed, and writes the slices back: entries of
absent tasks are never read or changed. This is the single place where the absent-task rule
of ``polytask.backward`` meets a balancer's state; methods only declare.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from polytask.balancers.base import Balancer


@dataclass(frozen=True)
class PerTask:
    """How an attribute of a balancer is indexed by task.

    Attributes:
        axes: the axes (of a tensor, or nesting levels of a list) that run over tasks;
            ``(0,)`` for a vector ``(T,)``, ``(0, 1)`` for a ``T x T`` matrix, ``(1,)`` for
            ``(K, T)``.
        fill: the value of a task's entries when the state is first created while that task
            is absent (methods read it as "not seen yet"; NaN unless said otherwise).
    """

    axes: tuple[int, ...] = (0,)
    fill: float = math.nan


def _get(owner: Any, path: str) -> Any:
    for part in path.split("."):
        owner = getattr(owner, part)
    return owner


def _set(owner: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    if isinstance(owner, nn.Module) and isinstance(owner._parameters.get(last), nn.Parameter):
        # A learnt per-task parameter is shadowed by a differentiable slice of itself for the
        # duration (so gradients reach the parameter), then unshadowed.
        if isinstance(value, nn.Parameter):
            owner.__dict__.pop(last, None)
        else:
            owner.__dict__[last] = value
        return
    setattr(owner, path.split(".")[-1], value)


def take(value: Any, axes: tuple[int, ...], index: Sequence[int]) -> Any:
    """The entries of the tasks ``index`` along ``axes`` (tensors: a copy, or a
    differentiable slice of a parameter; lists: nested by ``axes``; mappings keyed by task
    name and ``None``: unchanged)."""
    if value is None or isinstance(value, Mapping):
        return value
    if isinstance(value, Tensor):
        rows = torch.as_tensor(list(index), dtype=torch.long, device=value.device)
        out = value
        for axis in axes:
            out = out.index_select(axis, rows)
        return out
    if isinstance(value, (list, tuple)):
        if 0 in axes:
            value = [value[i] for i in index]
        inner = tuple(a - 1 for a in axes if a > 0)
        return [take(v, inner, index) for v in value] if inner else list(value)
    raise TypeError(f"per-task state of type {type(value).__name__} cannot be restricted")


def _put(full: Tensor | None, sub: Tensor, spec: PerTask, index: Sequence[int], T: int) -> Tensor:
    """``full`` with the entries of ``index`` replaced by ``sub`` (a new tensor on ``sub``'s
    device and dtype; created filled with ``spec.fill`` when ``full`` is ``None``)."""
    if full is None:
        shape = list(sub.shape)
        for axis in spec.axes:
            shape[axis] = T
        full = torch.full(shape, spec.fill, dtype=sub.dtype, device=sub.device)
    else:
        full = full.detach().to(sub.device, sub.dtype).clone()
    rows = torch.as_tensor(list(index), dtype=torch.long, device=sub.device)
    if len(spec.axes) == 1:
        full.index_copy_(spec.axes[0], rows, sub.detach())
        return full
    if list(spec.axes) != list(range(spec.axes[0], spec.axes[0] + len(spec.axes))):
        raise ValueError(f"per-task axes of one tensor must be adjacent, got {spec.axes}")
    grid = torch.meshgrid(*[rows] * len(spec.axes), indexing="ij")
    selector: list[Any] = [slice(None)] * full.dim()
    for axis, part in zip(spec.axes, grid, strict=True):
        selector[axis] = part
    full[tuple(selector)] = sub.detach()
    return full


@contextmanager
def restricted(balancer: Balancer, present: Sequence[int]) -> Iterator[None]:
    """Within the block ``balancer`` sees only the tasks ``present`` (positions in its bound
    task order): ``task_names`` and every declared per-task attribute are sliced to them.
    On normal exit the slices are written back (entries of absent tasks unchanged); on an
    exception the state is restored as it was."""
    names = list(balancer.task_names)
    T = len(names)
    index = list(present)
    saved: dict[str, Any] = {}
    for path, spec in balancer.task_state.items():
        value = _get(balancer, path)
        saved[path] = value
        _set(balancer, path, take(value, spec.axes, index))
    balancer.task_names = [names[i] for i in index]
    balancer.bound_task_names = names
    ok = False
    try:
        yield
        ok = True
    finally:
        balancer.task_names = names
        balancer.bound_task_names = None
        for path, spec in balancer.task_state.items():
            full = saved[path]
            sub = _get(balancer, path)
            if ok and isinstance(sub, Tensor) and not isinstance(full, nn.Parameter):
                _set(balancer, path, _put(full, sub, spec, index, T))
            else:
                _set(balancer, path, full)
