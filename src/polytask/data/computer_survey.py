"""Lenk et al.'s computer survey: 190 respondents rate 20 computer profiles (one task each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.io import loadmat

from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, per_task_splits

FOLDER = "computer_survey"
FILE = DataFile("conjointAnalysisComputerBuyers.mat", "c8dd4158cc9b9f2e955117340d5904a0")
RESPONDENTS, PROFILES, ATTRIBUTES = 190, 20, 14


@register("computer_survey")
def computer_survey(
    root: str | Path | None = None,
    train_profiles: int = 12,
    val_profiles: int = 4,
) -> DataSplits:
    """The computer-buying survey of Lenk, DeSarbo, Green & Young (1996), used by Argyriou,
    Evgeniou & Pontil (2008) for multi-task feature learning: 190 respondents (tasks
    ``resp_001`` ...) rate the same 20 computer profiles from 0 to 10; the input is the
    profile's 14-d design row (a constant, then 13 attributes: hot line, RAM, screen size,
    CPU, hard disk, CD ROM, cache, colour, availability, warranty, software, guarantee,
    price). Splits by profile, the same for every respondent: the first ``train_profiles``
    for training, the next ``val_profiles`` for validation, the rest for testing (the
    literature trains on the first 8 or 16 calibration profiles).
    """
    if train_profiles < 1 or val_profiles < 1 or train_profiles + val_profiles >= PROFILES:
        raise ValueError(f"need train + val profiles < {PROFILES}, both >= 1")
    mat = loadmat(resolve(FOLDER, FILE, root))
    ratings = np.asarray(mat["likeBuy"], dtype=np.float64)
    design = np.asarray(mat["designMarix"], dtype=np.float64)  # sic, as stored
    if ratings.shape != (RESPONDENTS, PROFILES) or design.shape != (PROFILES, ATTRIBUTES):
        raise ValueError(
            f"computer_survey: expected ratings {RESPONDENTS}x{PROFILES} and design "
            f"{PROFILES}x{ATTRIBUTES}"
        )
    x = torch.as_tensor(design, dtype=torch.float32)
    names = [f"resp_{r + 1:03d}" for r in range(RESPONDENTS)]
    ys = [torch.as_tensor(ratings[r], dtype=torch.float32) for r in range(RESPONDENTS)]
    rest = PROFILES - train_profiles - val_profiles
    fractions = (train_profiles / PROFILES, val_profiles / PROFILES, rest / PROFILES)
    return per_task_splits(
        "computer_survey", [x] * RESPONDENTS, ys, names, fractions, 0,
        {"split": f"profiles 1-{train_profiles} train, next {val_profiles} val, rest test"},
        ordered=True,
    )  # fmt: skip
