"""Pareto fronts over per-task metrics."""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float], higher_is_better: Sequence[bool]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, up in zip(a, b, higher_is_better, strict=True):
        if (x < y) if up else (x > y):
            return False
        if x != y:
            better = True
    return better


def pareto_front(points: Sequence[Sequence[float]], higher_is_better: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points, in input order.

    A point is dominated when another is at least as good in every objective and strictly
    better in one. Duplicates do not dominate each other, so identical non-dominated points
    are all kept; ties in one objective are decided by the others.

    Args:
        points: ``N`` points of ``K`` objectives (for example one run's metric per task).
        higher_is_better: ``K`` directions.
    """
    K = len(higher_is_better)
    for p in points:
        if len(p) != K:
            raise ValueError(f"every point needs {K} objectives, got {list(p)}")
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, higher_is_better) for j, q in enumerate(points) if j != i)
    ]
