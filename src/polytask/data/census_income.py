"""UCI Census-Income (KDD) as in the MMoE paper (Ma et al., KDD 2018, section 6.3)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

from polytask.data.files import DataFile, find_local, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, random_partition
from polytask.data.tabular import Encoding, read_csv, tabular_splits

FOLDER = "census_income_kdd"
_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/"
TEST_FILE = DataFile(
    "census-income.test.gz", "a8c39dce642efb4d17f28ebe74a3c271", (_UCI + "census-income.test.gz",)
)
# UCI publishes no checksum of the training file; it is checked by its row and field counts.
TRAIN_FILE = DataFile("census-income.data.gz", None, ())
TRAIN_ROWS, TEST_ROWS, FIELDS = 199_523, 99_762, 42

COLUMNS = [
    "age", "class of worker", "detailed industry recode", "detailed occupation recode",
    "education", "wage per hour", "enroll in edu inst last wk", "marital stat",
    "major industry code", "major occupation code", "race", "hispanic origin", "sex",
    "member of a labor union", "reason for unemployment", "full or part time employment stat",
    "capital gains", "capital losses", "dividends from stocks", "tax filer stat",
    "region of previous residence", "state of previous residence",
    "detailed household and family stat", "detailed household summary in household",
    "instance weight", "migration code-change in msa", "migration code-change in reg",
    "migration code-move within reg", "live in this house 1 year ago",
    "migration prev res in sunbelt", "num persons worked for employer",
    "family members under 18", "country of birth father", "country of birth mother",
    "country of birth self", "citizenship", "own business or self employed",
    "fill inc questionnaire for veteran's admin", "veterans benefits",
    "weeks worked in year", "year", "income",
]  # fmt: skip
CONTINUOUS = [0, 5, 16, 17, 18, 30, 39]
WEIGHT, MARITAL, EDUCATION, INCOME = 24, 7, 4, 41
COLLEGE = {
    "Associates degree-academic program", "Associates degree-occup /vocational",
    "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)",
}  # fmt: skip


def _rows(path: Path, expected: int) -> list[list[str]]:
    rows = read_csv(path)
    bad = next((i for i, r in enumerate(rows) if len(r) != FIELDS), None)
    if len(rows) != expected or bad is not None:
        raise ValueError(
            f"{path}: expected {expected} rows of {FIELDS} fields, got {len(rows)} rows"
            + (f" (row {bad} has {len(rows[bad])} fields)" if bad is not None else "")
            + "; the file is not the UCI Census-Income (KDD) file"
        )
    return rows


@register("census_income")
def census_income(
    root: str | Path | None = None,
    group: Literal[1, 2] = 1,
    encoding: Encoding = "onehot",
    embed_dim: int = 8,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> DataSplits:
    """UCI Census-Income (KDD) with the MMoE paper's tasks (Ma et al., KDD 2018, sec. 6.3).

    Tasks (binary, AUC): group 1 ``income`` (> 50K) and ``never_married``; group 2
    ``education`` (an associate, bachelor, master, professional or doctoral degree) and
    ``never_married``. Inputs: every other column except the sampling weight, categorical
    columns encoded and continuous ones standardised with statistics of the training split.

    Splits: with the official training file (``census-income.data.gz``, 199,523 rows, put in
    ``<root>/census_income_kdd/``) the paper's protocol: train on it, the official test file
    split 1:1 into validation and test. Without it (the local copy holds the test file
    only) the test file's 99,762 rows are split by ``fractions`` (60/20/20) with ``seed``, and a
    warning and ``metadata["split"]`` say that results are not comparable with the paper.

    Args:
        root: folder holding ``census_income_kdd/`` (default ``$POLYTASK_DATA``, the cache).
        group: task group 1 or 2 of the paper.
        encoding: ``onehot`` (one float matrix) or ``embedding`` (codes for a feature schema;
            ``metadata["feature_schema"]``).
        embed_dim: embedding width in the schema.
        fractions: train/validation/test fractions when only the test file is present.
        seed: seed of the split.
    """
    if group not in (1, 2):
        raise ValueError(f"group must be 1 or 2, got {group}")
    test_rows = _rows(resolve(FOLDER, TEST_FILE, root), TEST_ROWS)
    train_path = find_local(FOLDER, TRAIN_FILE, root)
    if train_path is not None:
        train_rows = _rows(train_path, TRAIN_ROWS)
        val_idx, test_idx = random_partition(
            len(test_rows), [len(test_rows) // 2, len(test_rows) - len(test_rows) // 2], seed
        )
        parts = {
            "train": train_rows,
            "val": [test_rows[i] for i in val_idx.tolist()],
            "test": [test_rows[i] for i in test_idx.tolist()],
        }
        how = "official: train file; test file split 1:1 into validation and test (paper protocol)"
    else:
        if abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
            raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
        n = len(test_rows)
        sizes = [round(n * fractions[0]), round(n * fractions[1])]
        sizes.append(n - sum(sizes))
        idx = random_partition(n, sizes, seed)
        parts = {
            k: [test_rows[i] for i in part.tolist()]
            for k, part in zip(("train", "val", "test"), idx, strict=True)
        }
        how = (
            f"the official test file only, split {fractions[0]:.0%}/{fractions[1]:.0%}/"
            f"{fractions[2]:.0%} "
            f"with seed {seed}: NOT comparable with the paper (trained on the official train file)"
        )
        warnings.warn(
            f"census_income: the training file census-income.data.gz is absent; using {how}",
            UserWarning,
            stacklevel=2,
        )
    first = INCOME if group == 1 else EDUCATION
    targets = {
        ("income" if group == 1 else "education"): (
            (lambda r: float(r[INCOME] == "50000+."))
            if group == 1
            else (lambda r: float(r[EDUCATION] in COLLEGE))
        ),
        "never_married": lambda r: float(r[MARITAL] == "Never married"),
    }
    dropped = {WEIGHT, MARITAL, first, INCOME}
    categorical = [c for c in range(FIELDS) if c not in dropped and c not in CONTINUOUS]
    return tabular_splits(
        "census_income", parts, targets, categorical, CONTINUOUS, COLUMNS, encoding, embed_dim,
        {"split": how, "group": group, "seed": seed},
    )  # fmt: skip
