"""Task losses handed over as one stacked tensor, taken apart again.

A user who writes ``polytask.backward(torch.stack(losses), ...)`` gives the engine one
autograd node for all tasks: a per-task backward through entry ``t`` of the stacked tensor
sends a zero gradient to every other task's loss, and on through every other head (``T^2``
head work; measured 6.8x the plain step at ``T = 32``). When the tensor is a
``torch.stack`` of scalars (along dimension 0), :class:`Unstacked` hooks that ``stack`` node:
inside :func:`only_task` ``t`` the node passes the gradient to input ``t`` only and leaves
the others undefined, so autograd skips their heads (undefined gradients short-circuit the
backward functions). Outside :func:`only_task` it passes everything, so the final weighted
backward is unchanged. A tensor made otherwise cannot be taken apart: the engine warns when
a gradient method will take per-task gradients through it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from torch import Tensor

_ACTIVE: ContextVar[int | None] = ContextVar("polytask_active_task", default=None)


@contextmanager
def only_task(index: int) -> Iterator[None]:
    """A block in which a per-task backward is for the task at ``index`` (the engine's
    per-task loops wrap each call in it)."""
    token = _ACTIVE.set(index)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


class Unstacked:
    """The hook on a ``torch.stack`` of task losses (see the module docstring).

    Attributes:
        hooked: whether the tensor was a stack of scalars along dimension 0 (else
            :meth:`warn_if_slow` warns that per-task gradients take the slow path).
    """

    def __init__(self, stacked: Tensor) -> None:
        node = stacked.grad_fn
        count = stacked.numel()
        self.hooked = (
            node is not None
            and type(node).__name__ == "StackBackward0"
            and getattr(node, "_saved_dim", None) == 0
            and len(node.next_functions) == count
        )
        self._handle: Any = None
        self._node: Any = node
        if self.hooked:
            assert node is not None
            self._handle = node.register_hook(self._hook)

    def warn_if_slow(self) -> None:
        """Warn when the tensor could not be taken apart (called by the engine for gradient
        methods only: a loss weighting takes no per-task gradient)."""
        if self.hooked:
            return
        made_by = type(self._node).__name__ if self._node is not None else "no operation"
        warnings.warn(
            f"the task losses came as one tensor made by {made_by}, not by torch.stack of "
            "scalars: per-task gradients then push zeros through every task's head (T^2 "
            "head work). Pass a list or dict of scalar losses (TaskSet.losses gives one), "
            "or torch.stack them directly",
            RuntimeWarning,
            stacklevel=5,
        )

    @staticmethod
    def _hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> Any:
        active = _ACTIVE.get()
        if active is None or active >= len(grad_inputs):
            return None
        return tuple(g if i == active else None for i, g in enumerate(grad_inputs))

    def sources(self) -> list[Any] | None:
        """Per task, the autograd node of its own loss (the stack's inputs), or ``None``
        when the tensor was not a stack."""
        if not self.hooked or self._node is None:
            return None
        return [child for child, _ in self._node.next_functions]

    def remove(self) -> None:
        """Remove the hook (after the step)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
