"""Aligned-MTL: align the principal components of the task gradients."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from torch import Tensor

from polytask.balancers.base import GramianWeighting
from polytask.balancers.registry import register
from polytask.balancers.solvers import input_precision


@register("aligned_mtl")
class AlignedMTL(GramianWeighting):
    """Aligned-MTL (Senushkin et al., "Independent Component Alignment for Multi-Task
    Learning", CVPR 2023): replace the Jacobian ``J = U S V^T`` by the well-conditioned
    ``Jhat = sigma U V^T`` (all singular values set to one scale ``sigma``) and take the mean
    of its rows. On the Gramian ``G = V L V^T`` (``L = S^2``) this is the weights
    ``w = sigma V L^{-1/2} V^T (1/T)``, over the non-zero eigenvalues.

    Args:
        scale_mode: ``sigma`` is the smallest non-zero singular value (``min``, the paper's
            choice), their ``median``, or the root mean square (``rmse``).
        eps: eigenvalues below ``eps`` times the largest are treated as zero (``None``, the
            default: the square root of the Gramian's precision, 1.5e-8 in float64 and
            3.5e-4 in float32; a Gramian's eigenvalues carry an absolute rounding error of
            about ``precision x largest``, so smaller ones are known to fewer than half the
            digits, and whitening by them would make the update follow rounding noise).
    """

    properties: ClassVar[frozenset[str]] = frozenset({"homogeneous", "order_invariant"})

    def __init__(
        self, scale_mode: Literal["min", "median", "rmse"] = "min", eps: float | None = None
    ) -> None:
        super().__init__()
        if scale_mode not in ("min", "median", "rmse"):
            raise ValueError(f"scale_mode must be 'min', 'median' or 'rmse', got {scale_mode!r}")
        self.scale_mode = scale_mode
        self.eps = eps

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        G = gramian.detach().to("cpu", torch.float64)
        T = G.shape[0]
        values, vectors = torch.linalg.eigh(G)
        top = float(values.max())
        if top <= 0:
            return torch.full((T,), 1.0 / T, dtype=gramian.dtype, device=gramian.device)
        eps = math.sqrt(input_precision(gramian)) if self.eps is None else self.eps
        keep = values > eps * top
        values, vectors = values[keep], vectors[:, keep]
        sigma = values.sqrt()
        if self.scale_mode == "min":
            scale = sigma.min()
        elif self.scale_mode == "median":
            scale = sigma.median()
        else:
            scale = (values.mean()).sqrt()
        B = scale * vectors @ torch.diag(1.0 / sigma) @ vectors.T
        w = B @ torch.full((T,), 1.0 / T, dtype=torch.float64)
        return w.to(gramian.device, gramian.dtype)
