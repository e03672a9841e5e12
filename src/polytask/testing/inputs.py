"""Generated task Jacobians for property checks: every rank, degenerate rows, any scale.

Each case is a named ``(T, P)`` Jacobian. The kinds cover what real training produces: full
rank, rank deficient, a zero row (a task whose loss is constant), duplicated, opposed and
nearly duplicated rows, all scaled from 0 up to 1e15, in float32 and float64.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

KINDS = ("full", "rank_one", "rank_two", "zero_row", "duplicated", "opposed", "near_duplicate")
SCALES = (0.0, 1e-10, 1e-5, 1.0, 1e5, 1e10, 1e15)
DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class JacobianCase:
    """One generated Jacobian ``(T, P)`` and how it was made.

    Attributes:
        kind: one of :data:`KINDS`.
        scale: the factor every entry was multiplied by.
        jacobian: the matrix, in its dtype.
    """

    kind: str
    scale: float
    jacobian: Tensor

    def __str__(self) -> str:
        T, P = self.jacobian.shape
        return f"{self.kind} {T}x{P} x{self.scale:g} {str(self.jacobian.dtype).split('.')[-1]}"


def make_jacobian(kind: str, T: int, P: int, seed: int = 0) -> Tensor:
    """One unscaled float64 Jacobian ``(T, P)`` of the given kind (:data:`KINDS`)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    if kind == "full":
        return randn(T, P)
    if kind in ("rank_one", "rank_two"):
        rank = 1 if kind == "rank_one" else 2
        return randn(T, rank) @ randn(rank, P)
    J = randn(T, P)
    if kind == "zero_row":
        J[0] = 0.0
    elif kind == "duplicated":
        J[1] = J[0]
    elif kind == "opposed":
        J[1] = -J[0]
    elif kind == "near_duplicate":
        J = randn(1, P) + 1e-4 * randn(T, P)
    else:
        raise ValueError(f"unknown Jacobian kind {kind!r}; choose from {list(KINDS)}")
    return J


def jacobian_cases(
    T: int = 5,
    P: int = 7,
    kinds: Sequence[str] = KINDS,
    scales: Sequence[float] = SCALES,
    dtypes: Sequence[torch.dtype] = DTYPES,
    seed: int = 0,
) -> Iterator[JacobianCase]:
    """Every combination of kind, scale and dtype (``T >= 2``)."""
    if T < 2:
        raise ValueError(f"T must be >= 2 to build every kind, got {T}")
    for kind in kinds:
        base = make_jacobian(kind, T, P, seed)
        for scale in scales:
            for dtype in dtypes:
                yield JacobianCase(kind, scale, (base * scale).to(dtype))
