"""Synthetic two-task regression with a controlled task correlation (MMoE paper, section 4)."""

from __future__ import annotations

import math

import torch

from polytask.data.dataset import TensorTaskDataset
from polytask.data.registry import register
from polytask.data.splits import DataSplits, random_partition
from polytask.tasks.task import Task


@register("synthetic_correlation")
def synthetic_correlation(
    correlation: float = 0.5,
    num_samples: int = 12_000,
    dim: int = 100,
    c: float = 1.0,
    m: int = 10,
    noise_std: float = 0.01,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> DataSplits:
    """Two regression tasks whose label correlation is set by ``correlation`` (Ma et al.,
    "Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts",
    KDD 2018, section 4.1).

    With orthogonal unit vectors ``u1, u2`` in ``R^dim``: ``w1 = c u1``,
    ``w2 = c (p u1 + sqrt(1 - p^2) u2)``, ``x ~ N(0, I)`` and, for each task,
    ``y_i = w_i^T x + sum_{k=1..m} sin(alpha_k w_i^T x + beta_k) + eps``,
    ``eps ~ N(0, noise_std^2)``. The paper does not give ``alpha_k, beta_k``; they are drawn
    from ``N(0, 1)`` with the data seed. The cosine of ``w1, w2`` is exactly ``p``.

    Args:
        correlation: ``p`` in ``[-1, 1]``.
        num_samples: rows in all splits together.
        dim: input dimension (100 in the paper).
        c: scale of the weights (1).
        m: number of sine terms (10).
        noise_std: label noise standard deviation (0.01).
        val_fraction, test_fraction: sizes of validation and test splits.
        seed: seed of everything random.
    """
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
    if dim < 2:
        raise ValueError("dim must be >= 2 (two orthogonal directions are needed)")
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, 2, generator=g, dtype=torch.float64))
    u1, u2 = q[:, 0], q[:, 1]
    w1 = c * u1
    w2 = c * (correlation * u1 + math.sqrt(1 - correlation**2) * u2)
    alpha = torch.randn(m, generator=g, dtype=torch.float64)
    beta = torch.randn(m, generator=g, dtype=torch.float64)
    x = torch.randn(num_samples, dim, generator=g, dtype=torch.float64)

    def label(w: torch.Tensor) -> torch.Tensor:
        s = x @ w
        noise = noise_std * torch.randn(num_samples, generator=g, dtype=torch.float64)
        return s + torch.sin(alpha * s[:, None] + beta).sum(1) + noise

    data = TensorTaskDataset(
        x.float(), {"y1": label(w1).float(), "y2": label(w2).float()}, name="synthetic"
    )
    n_val = round(val_fraction * num_samples)
    n_test = round(test_fraction * num_samples)
    train_idx, val_idx, test_idx = random_partition(
        num_samples, [num_samples - n_val - n_test, n_val, n_test], seed + 1
    )
    tasks = [Task(n, "mse", metrics=("mse", "r2")) for n in ("y1", "y2")]
    return DataSplits(
        data.subset(train_idx, "synthetic/train"),
        data.subset(val_idx, "synthetic/val"),
        data.subset(test_idx, "synthetic/test"),
        tasks,
        (dim,),
        {"dataset": "synthetic_correlation", "correlation": correlation, "seed": seed},
    )
