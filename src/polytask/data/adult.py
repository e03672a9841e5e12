"""UCI Adult with its official train/test split (two binary tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, random_partition
from polytask.data.tabular import Encoding, read_csv, tabular_splits

FOLDER = "adult"
_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
# The local copies are gzipped (gzip -9 -n) from the UCI files; a download of the plain UCI
# file is accepted by its own checksum (see SOURCE.md: MD5 of the uncompressed bytes).
TRAIN = DataFile(
    "adult.data.gz",
    "945afe60d0a702168e91cc89b068cca1",
    alternatives=(("adult.data", "5d7c39d7b8804f071cdd1f2a7c460872"),),
)
TEST = DataFile(
    "adult.test.gz",
    "203b162ca23ef71c99503d1a21f33faa",
    alternatives=(("adult.test", "35238206dfdf7f1fe215bbb874adecdc"),),
)
TRAIN_DOWNLOAD = DataFile("adult.data", "5d7c39d7b8804f071cdd1f2a7c460872", (_UCI + "adult.data",))
TEST_DOWNLOAD = DataFile("adult.test", "35238206dfdf7f1fe215bbb874adecdc", (_UCI + "adult.test",))
TRAIN_ROWS, TEST_ROWS = 32_561, 16_281

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country", "income",
]  # fmt: skip
CONTINUOUS = [0, 4, 10, 11, 12]
FNLWGT, MARITAL, RELATIONSHIP, SEX, INCOME = 2, 5, 7, 9, 14


def _file(local: DataFile, download: DataFile, root: str | Path | None) -> Path:
    from polytask.data.files import find_local

    found = find_local(FOLDER, local, root)
    return found if found is not None else resolve(FOLDER, download, root)


def _rows(path: Path, expected: int, test: bool) -> list[list[str]]:
    rows = read_csv(path)
    if test and rows and rows[0][0].startswith("|"):
        rows = rows[1:]  # the UCI comment line "|1x3 Cross validator"
    if len(rows) != expected or any(len(r) != len(COLUMNS) for r in rows):
        raise ValueError(
            f"{path}: expected {expected} rows of {len(COLUMNS)} fields, got {len(rows)}"
        )
    return rows


@register("adult")
def adult(
    root: str | Path | None = None,
    second: Literal["never_married", "sex"] = "never_married",
    drop_relationship: bool = True,
    val_fraction: float = 0.1,
    encoding: Encoding = "onehot",
    embed_dim: int = 8,
    seed: int = 0,
) -> DataSplits:
    """UCI Adult (Kohavi 1996) with its official split: 32,561 training and 16,281 test rows.

    Tasks (binary, AUC): ``income`` (> 50K) and ``never_married`` (marital status), or
    ``sex`` for a fairness-flavoured pair. The columns used as targets and the sampling weight
    ``fnlwgt`` are not inputs; ``relationship`` (which gives marital status away: husband,
    wife) is dropped unless ``drop_relationship=False``. Validation rows (``val_fraction``)
    are held out of the training file with ``seed``; the test file is only the test split.
    Preprocessing is fitted on the training rows.

    Args:
        root: folder holding ``adult/`` (default ``$POLYTASK_DATA``, then the cache, then a
            download from UCI).
        second: the second task, ``never_married`` or ``sex``.
        drop_relationship: leave out the ``relationship`` column.
        val_fraction: share of the training file held out for validation (0.1).
        encoding: ``onehot`` or ``embedding`` (see :func:`census_income`).
        embed_dim: embedding width in the schema.
        seed: seed of the validation hold-out.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train_rows = _rows(_file(TRAIN, TRAIN_DOWNLOAD, root), TRAIN_ROWS, test=False)
    test_rows = _rows(_file(TEST, TEST_DOWNLOAD, root), TEST_ROWS, test=True)
    n_val = round(len(train_rows) * val_fraction)
    train_idx, val_idx = random_partition(len(train_rows), [len(train_rows) - n_val, n_val], seed)
    parts = {
        "train": [train_rows[i] for i in train_idx.tolist()],
        "val": [train_rows[i] for i in val_idx.tolist()],
        "test": test_rows,
    }
    second_column = MARITAL if second == "never_married" else SEX
    targets = {
        "income": lambda r: float(r[INCOME].rstrip(".") == ">50K"),
        second: (
            (lambda r: float(r[MARITAL] == "Never-married"))
            if second == "never_married"
            else (lambda r: float(r[SEX] == "Female"))
        ),
    }
    dropped = {FNLWGT, INCOME, second_column} | ({RELATIONSHIP} if drop_relationship else set())
    categorical = [c for c in range(len(COLUMNS)) if c not in dropped and c not in CONTINUOUS]
    return tabular_splits(
        "adult", parts, targets, categorical, CONTINUOUS, COLUMNS, encoding, embed_dim,
        {"split": "official: adult.data (train, with a seeded validation hold-out) and "
                  "adult.test (test)", "seed": seed, "second_task": second},
    )  # fmt: skip
