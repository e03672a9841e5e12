"""MGDA: the min-norm point of the convex hull of the task gradients."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import min_norm_simplex

Normalization = Literal["none", "l2", "loss", "loss+"]


@register("mgda")
class MGDA(GramianWeighting):
    """Multiple-gradient descent: the common descent direction of smallest norm.

    Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018
    (Désidéri 2012 for MGDA). With task gradients ``g_t`` (rows of ``J``), solve

    ``min_{w in simplex} || sum_t w_t g_t ||^2 = w^T G w``

    exactly, through non-negative least squares on a factor of the Gramian (see
    :func:`~polytask.balancers.solvers.min_norm_simplex`; closed form for two tasks). The
    direction ``d = J^T w`` satisfies
    ``<d, g_t> >= ||d||^2 >= 0`` for every task (no task's loss increases to first order), and
    ``d = 0`` exactly at a Pareto-stationary point. At the representation level this is
    MGDA-UB (the paper's upper bound), at the parameter level exact MGDA.

    Args:
        normalization: gradients normalised before solving, as in the paper's code:
            ``none`` (default), ``l2`` (``g_t / ||g_t||``), ``loss`` (``g_t / L_t``) or
            ``loss+`` (``g_t / (L_t ||g_t||)``). The returned weights undo the
            normalisation, so ``d`` is a combination of the raw
            gradients: ``w_t = lambda_t / n_t`` for normaliser ``n_t``.
        max_iter: major cycles of the min-norm solver at most (250).
        tol: optimality tolerance of the solver, relative to the largest squared norm (1e-12).
    """

    properties: ClassVar[frozenset[str]] = frozenset(
        {"homogeneous", "mean_when_identical", "non_conflicting", "order_invariant"}
    )

    def __init__(
        self, normalization: Normalization = "none", max_iter: int = 250, tol: float = 1e-12
    ) -> None:
        super().__init__()
        if normalization not in ("none", "l2", "loss", "loss+"):
            raise ValueError(
                f"normalization must be 'none', 'l2', 'loss' or 'loss+', got {normalization!r}"
            )
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        self.normalization = normalization
        self.max_iter = max_iter
        self.tol = tol

    def normalizers(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """``n_t`` ``(T,)`` such that the solver sees ``g_t / n_t`` (1 for ``none``)."""
        norms = gramian.diagonal().clamp_min(0).sqrt()
        if self.normalization == "l2":
            n = norms
        elif self.normalization == "loss":
            n = losses.to(gramian.dtype)
        elif self.normalization == "loss+":
            n = losses.to(gramian.dtype) * norms
        else:
            return torch.ones_like(norms)
        # A zero gradient (or loss) gets normaliser 1: its row is zero either way.
        return torch.where(n > 0, n, torch.ones_like(n))

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        n = self.normalizers(gramian, losses)
        scaled = gramian / (n[:, None] * n[None, :])
        lam = min_norm_simplex(scaled, self.max_iter, self.tol)
        return lam.to(gramian.dtype) / n
