"""Parkinson's telemonitoring (Tsanas et al. 2010): UPDRS scores from voice measures."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from polytask.data.dataset import TensorTaskDataset
from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import (
    SPLITS,
    DataSplits,
    fraction_partition,
    matrix_splits,
    per_task_splits,
    standardize,
)
from polytask.data.tabular import read_csv
from polytask.tasks.task import Task

FOLDER = "parkinsons_telemonitoring"
FILE = DataFile(
    "parkinsons_updrs.data",
    "4f97310e2c9fbeedb72e8a37822fee45",
    (
        "https://archive.ics.uci.edu/ml/machine-learning-databases/parkinsons/telemonitoring/"
        "parkinsons_updrs.data",
    ),
)
ROWS, SUBJECTS = 5_875, 42
VOICE = list(range(6, 22))  # Jitter(%) ... PPE: the 16 voice measures


@register("parkinsons")
def parkinsons(
    root: str | Path | None = None,
    mode: Literal["targets", "patients", "patient_targets"] = "targets",
    target: Literal["motor_UPDRS", "total_UPDRS"] = "total_UPDRS",
    with_demographics: bool = True,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> DataSplits:
    """UCI Parkinson's Telemonitoring (Tsanas, Little, McSharry, Ramig 2010): 5,875
    recordings of 42 patients, 16 voice measures each.

    ``mode="targets"``: two regression tasks ``motor_UPDRS`` and ``total_UPDRS`` on every
    recording (setting 1), rows split at random by ``fractions``; targets standardised with
    training statistics. ``mode="patients"``: one task per patient (``patient_01`` ...)
    predicting ``target`` (setting 4), each patient's recordings split by ``fractions``.
    Inputs: the 16 voice measures, plus age, sex and test time when ``with_demographics``;
    ``mode="patient_targets"``: both tasks on every recording, each patient's recordings
    split by ``fractions`` (so every patient is in every split), the rows grouped by patient
    in ``metadata["groups"]`` (per split, ``{patient: row indices}``): 42 two-task clients
    for federated learning (``clients: {split: groups}``); each task's ``target_scale``
    is its training rows' mean and deviation.
    Inputs: the 16 voice measures, plus age, sex and test time when ``with_demographics``;
    neither UPDRS score is ever an input. Inputs are standardised with training statistics.
    """
    rows = read_csv(resolve(FOLDER, FILE, root), header=True)
    if len(rows) != ROWS:
        raise ValueError(f"parkinsons_updrs.data: expected {ROWS} rows, got {len(rows)}")
    values = torch.tensor([[float(v) for v in r] for r in rows])
    columns = VOICE + ([1, 2, 3] if with_demographics else [])
    x = values[:, columns]
    motor, total = values[:, 4], values[:, 5]
    meta = {"inputs": "16 voice measures" + (" + age, sex, test time" if with_demographics else "")}
    if mode == "targets":
        tasks = [
            Task("motor_UPDRS", "mse", metrics=("mse", "mae")),
            Task("total_UPDRS", "mse", metrics=("mse", "mae")),
        ]
        return matrix_splits(
            "parkinsons", x, {"motor_UPDRS": motor, "total_UPDRS": total}, tasks, fractions, seed,
            {**meta, "split": f"random rows {fractions}"}, standardize_targets=True,
        )  # fmt: skip
    if mode not in ("patients", "patient_targets"):
        raise ValueError(f"mode must be 'targets', 'patients' or 'patient_targets', got {mode!r}")
    subject = values[:, 0].long()
    ids = sorted(set(subject.tolist()))
    if len(ids) != SUBJECTS:
        raise ValueError(f"expected {SUBJECTS} patients, got {len(ids)}")
    if mode == "patient_targets":
        return patient_target_splits(x, {"motor_UPDRS": motor, "total_UPDRS": total}, subject,
                                     ids, fractions, seed, meta)  # fmt: skip
    y = motor if target == "motor_UPDRS" else total
    xs = [x[subject == s] for s in ids]
    ys = [y[subject == s] for s in ids]
    names = [f"patient_{s:02d}" for s in ids]
    return per_task_splits(
        "parkinsons", xs, ys, names, fractions, seed,
        {**meta, "target": target, "split": f"per patient {fractions}"},
        standardize_columns=tuple(range(len(columns))),
    )  # fmt: skip


def patient_target_splits(
    x: torch.Tensor,
    targets: dict[str, torch.Tensor],
    subject: torch.Tensor,
    ids: list[int],
    fractions: tuple[float, float, float],
    seed: int,
    meta: dict,
) -> DataSplits:
    """Both targets on every row, each patient's rows split by ``fractions`` (seed + the
    patient's index), rows grouped by patient (``metadata["groups"]``)."""
    rows: dict[str, list[torch.Tensor]] = {s: [] for s in SPLITS}
    groups: dict[str, dict[str, torch.Tensor]] = {s: {} for s in SPLITS}
    sizes = dict.fromkeys(SPLITS, 0)
    for k, s in enumerate(ids):
        mine = torch.nonzero(subject == s).reshape(-1)
        for split, part in zip(SPLITS, fraction_partition(len(mine), fractions, seed + k),
                               strict=True):  # fmt: skip
            rows[split].append(mine[part])
            groups[split][f"patient_{s:02d}"] = torch.arange(sizes[split], sizes[split] + len(part))
            sizes[split] += len(part)
    index = {s: torch.cat(rows[s]) for s in SPLITS}
    xs = standardize(*(x[index[s]].float() for s in SPLITS))
    tasks = []
    for name, y in targets.items():
        train = y[index["train"]].double()
        scale = (float(train.mean()), float(train.std()))
        tasks.append(Task(name, "mse", metrics=("mse", "mae"), target_scale=scale))
    datasets = [
        TensorTaskDataset(xs[i], {n: y[index[s]].float() for n, y in targets.items()},
                          name=f"parkinsons/{s}")
        for i, s in enumerate(SPLITS)
    ]  # fmt: skip
    metadata = {**meta, "dataset": "parkinsons", "seed": seed, "groups": groups,
                "split": f"per patient {fractions}, both targets", "sizes": sizes}  # fmt: skip
    fit, held, final = datasets
    return DataSplits(fit, held, final, tasks, tuple(x.shape[1:]), metadata)
