"""Penalties that are ``alpha`` times a norm with a closed-form proximal operator (l2,1,
trace norm): one constructor and solver hook, the norm given by the subclass."""

from __future__ import annotations

from polytask.classic.base import ClassicMTLEstimator
from polytask.classic.losses import TaskRows
from polytask.classic.solver import Array


class NormPenalty(ClassicMTLEstimator):
    """``min_W data term + alpha ||W||`` for the norm of :meth:`norm`, whose proximal
    operator is :meth:`shrink` (``threshold = step * alpha``).

    Args:
        alpha: strength of the penalty (>= 0; default 1.0).
        task_column, fit_intercept, max_iter, tol: as
            :class:`~polytask.classic.mean_regularized.MeanRegularizedPenalty`.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        task_column: int | None = None,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        self.alpha = alpha
        self.task_column = task_column
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    @staticmethod
    def shrink(V: Array, threshold: float) -> Array:
        """The proximal operator of ``threshold * norm``."""
        raise NotImplementedError

    @staticmethod
    def norm(W: Array) -> float:
        """The penalised norm of ``W`` ``(T, d)``."""
        raise NotImplementedError

    @staticmethod
    def dual_norm(G: Array) -> float:
        """The dual norm of ``G`` ``(T, d)``: ``W = 0`` is optimal exactly when ``alpha`` is
        at least the dual norm of the data term's gradient at 0 (the path's start)."""
        raise NotImplementedError

    def _path_range(self, rows: TaskRows) -> tuple[float, float, bool]:
        """From the smallest ``alpha`` at which ``W = 0`` is optimal (exact) down to 1e-4
        times it (as scikit-learn's ``LassoCV`` with ``eps=1e-4``)."""
        top = self.dual_norm(self._gradient_at_zero(rows))
        return top, 1e-4 * top, True

    def _prox(self, P: Array, step: float) -> Array:
        return self.shrink(P, step * self.alpha)

    def _nonsmooth_penalty(self, P: Array) -> float:
        return self.alpha * self.norm(P)
