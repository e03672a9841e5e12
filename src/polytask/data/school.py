"""The school data: 139 regression tasks, one per London school (MALSAR copy)."""

from __future__ import annotations

from pathlib import Path

import torch
from scipy.io import loadmat

from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, per_task_splits

FOLDER = "school"
FILE = DataFile("school.mat", "869a6ee9d48f83d4e88db72627b56149")
TASKS, ROWS = 139, 15_362


@register("school")
def school(
    root: str | Path | None = None,
    train_fraction: float = 0.75,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DataSplits:
    """Inner London Education Authority exam scores (Goldstein 1991; the multi-task
    benchmark of Evgeniou & Pontil 2004 and Argyriou et al. 2008): 139 schools = 139
    regression tasks over a shared 28-d input (27 attributes + a constant bias column),
    15,362 students in all.

    Each school's students are split at random: ``train_fraction`` (75 %) for training, of
    which ``val_fraction`` of the school's rows are held out for validation, and the rest
    (25 %) for testing, as in the literature's 75/25 per-task splits; ``seed`` + task index
    seeds each school. The two school-level percentage columns are standardised with training
    statistics. Tasks ``school_001`` ... ``school_139`` (MSE); a row labels its school only.
    """
    if not 0 < val_fraction < train_fraction < 1:
        raise ValueError("need 0 < val_fraction < train_fraction < 1")
    mat = loadmat(resolve(FOLDER, FILE, root))
    xs = [torch.as_tensor(mat["X"][0, t], dtype=torch.float32) for t in range(mat["X"].shape[1])]
    ys = [torch.as_tensor(mat["Y"][0, t], dtype=torch.float32) for t in range(mat["Y"].shape[1])]
    if len(xs) != TASKS or sum(len(x) for x in xs) != ROWS:
        raise ValueError(f"school.mat: expected {TASKS} tasks and {ROWS} rows")
    names = [f"school_{t + 1:03d}" for t in range(TASKS)]
    fractions = (train_fraction - val_fraction, val_fraction, 1 - train_fraction)
    return per_task_splits(
        "school", xs, ys, names, fractions, seed,
        {"source": "MALSAR school.mat", "split": f"per school {fractions} (train, val, test)"},
        standardize_columns=(3, 4),
    )  # fmt: skip
