"""SARCOS inverse dynamics (Vijayakumar & Schaal 2000): seven joint torques."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from scipy.io import loadmat

from polytask.data.files import DataFile, find_local, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, matrix_splits
from polytask.tasks.task import Task

FOLDER = "sarcos_test"
_GPML = "http://www.gaussianprocess.org/gpml/data/"
TEST = DataFile(
    "sarcos_inv_test.mat", "16457799b816f22238e6dc7301c751f6", (_GPML + "sarcos_inv_test.mat",)
)
# GPML publishes no checksum of the training file; it is checked by its shape.
TRAIN = DataFile("sarcos_inv.mat", None, ())
TEST_ROWS, TRAIN_ROWS, COLUMNS = 4_449, 44_484, 28


def _matrix(path: Path, key: str, rows: int) -> torch.Tensor:
    data = loadmat(path)[key]
    if data.shape != (rows, COLUMNS):
        raise ValueError(f"{path}: expected {key} of shape ({rows}, {COLUMNS}), got {data.shape}")
    return torch.as_tensor(data, dtype=torch.float32)


@register("sarcos")
def sarcos(
    root: str | Path | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> DataSplits:
    """SARCOS robot-arm inverse dynamics (Vijayakumar & Schaal 2000; Rasmussen & Williams
    2006, GPML): 21 inputs (7 joint positions, velocities, accelerations) and 7 regression
    tasks ``torque_1`` ... ``torque_7`` (MSE on standardised targets: the normalised MSE of
    the literature).

    With the official training file ``sarcos_inv.mat`` (44,484 rows) in the folder: train on
    it (a seeded tenth held out for validation), test on ``sarcos_inv_test.mat``. The local
    copy is the test file only: its 4,449 rows are split by ``fractions`` with ``seed``, and a
    warning and ``metadata["split"]`` say results are not comparable with the literature
    (whose test points also lie close to training trajectories).
    """
    test = _matrix(resolve(FOLDER, TEST, root), "sarcos_inv_test", TEST_ROWS)
    train_path = find_local(FOLDER, TRAIN, root)
    tasks = [Task(f"torque_{j + 1}", "mse", metrics=("mse",)) for j in range(7)]
    if train_path is not None:
        train = _matrix(train_path, "sarcos_inv", TRAIN_ROWS)
        data = torch.cat([train, test])
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(TRAIN_ROWS, generator=g)
        n_val = TRAIN_ROWS // 10
        given = {
            "train": order[n_val:],
            "val": order[:n_val],
            "test": torch.arange(TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS),
        }
        how = "official: sarcos_inv.mat (train, a tenth held out for validation), test file"
    else:
        data, given = test, None
        how = (
            f"the official test file only, split {fractions} with seed {seed}: NOT comparable "
            "with the literature (trained on the 44,484-row file)"
        )
        warnings.warn(
            f"sarcos: the training file sarcos_inv.mat is absent; using {how}",
            UserWarning,
            stacklevel=2,
        )
    targets = {t.name: data[:, 21 + j] for j, t in enumerate(tasks)}
    return matrix_splits(
        "sarcos", data[:, :21], targets, tasks, fractions, seed, {"split": how}, given=given,
        standardize_targets=True,
    )  # fmt: skip
