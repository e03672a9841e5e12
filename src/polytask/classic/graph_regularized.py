"""Graph-regularised multi-task learning: related tasks (edges of a task graph) get similar
weights (MALSAR's SRMTL, ``||W R||_F^2``; Evgeniou, Micchelli & Pontil 2005)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from polytask.classic.base import ClassicMTLEstimator, ridge
from polytask.classic.classifier import ClassicMTLClassifier
from polytask.classic.regressor import ClassicMTLRegressor
from polytask.classic.solver import Array


class GraphRegularizedPenalty(ClassicMTLEstimator):
    """``min_W data term + alpha sum_{(s, t, a)} a ||w_s - w_t||^2 + l2 ||W||_F^2``

    over the edges ``(s, t, a)`` of a task graph: ``alpha sum a ||w_s - w_t||^2 = 2 alpha
    tr(W^T L W)`` with the graph's Laplacian ``L`` (MALSAR's ``||W R||_F^2`` with one column
    of ``R`` per edge). The complete graph with weights 1 and ``alpha / T`` is
    :class:`~polytask.classic.MeanRegularizedMTL` with ``alpha``. Smooth: accelerated
    gradient.

    Args:
        graph: the edges, as ``(task_s, task_t)`` or ``(task_s, task_t, weight)`` with task
            ids as given to ``fit``; a task id not in the data is an error.
        alpha: strength of the graph penalty (>= 0; default 1.0).
        l2: ridge on every weight (>= 0; default 0).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.
    """

    def __init__(
        self,
        graph: Sequence[Sequence[Any]] = (),
        alpha: float = 1.0,
        l2: float = 0.0,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.graph = graph
        self.alpha = alpha
        self.l2 = l2
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _laplacian(self) -> Array:
        index = {v: i for i, v in enumerate(self.tasks_.tolist())}
        L = np.zeros((len(index), len(index)))
        for edge in self.graph:
            s, t, a = (*edge, 1.0) if len(edge) == 2 else edge
            for task in (s, t):
                if task not in index:
                    raise ValueError(
                        f"graph edge {tuple(edge)} names task {task!r}, which is not in the "
                        f"data; its tasks are {self.tasks_.tolist()[:10]}"
                    )
            if not a >= 0:
                raise ValueError(f"graph edge {tuple(edge)}: the weight must be >= 0")
            i, j = index[s], index[t]
            L[i, i] += a
            L[j, j] += a
            L[i, j] -= a
            L[j, i] -= a
        return L

    def _smooth_penalty(self, P: Array) -> tuple[float, Array]:
        # sum_edges a ||w_s - w_t||^2 = tr(W^T L W); its gradient is 2 L W.
        LW = self._laplacian_ @ P
        value, grad = ridge(P, self.l2)
        return value + self.alpha * float(np.sum(P * LW)), grad + 2 * self.alpha * LW

    def _penalty_lipschitz(self) -> float:
        return 2 * self.alpha * float(np.linalg.eigvalsh(self._laplacian_)[-1]) + 2 * self.l2

    def _prepare(self) -> None:
        self._laplacian_ = self._laplacian()


class GraphRegularizedMTL(GraphRegularizedPenalty, ClassicMTLRegressor):
    """Graph-regularised regression: :class:`GraphRegularizedPenalty` with each task's mean
    squared error."""


class GraphRegularizedMTLClassifier(GraphRegularizedPenalty, ClassicMTLClassifier):
    """Graph-regularised logistic regression: :class:`GraphRegularizedPenalty` with each
    task's mean logistic loss."""
