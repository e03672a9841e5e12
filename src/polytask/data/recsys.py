"""Recommendation data in the CTR/CVR column layout: Ali-CCP and AliExpress."""

from __future__ import annotations

import warnings
from pathlib import Path

from polytask.data.files import DataFile, find_local, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits
from polytask.data.tabular import Encoding, read_csv, tabular_splits


def _load(
    name: str,
    folder: str,
    full: dict[str, DataFile],
    sample: dict[str, DataFile],
    labels: tuple[str, str],
    drop: tuple[str, ...],
    is_dense: str,
    root: str | Path | None,
    encoding: Encoding,
    embed_dim: int,
) -> DataSplits:
    full_found = {s: find_local(folder, f, root) for s, f in full.items()}
    if all(p is not None for p in full_found.values()):
        paths = {s: p for s, p in full_found.items() if p is not None}
        how = "full files"
    else:
        paths = {s: resolve(folder, f, root) for s, f in sample.items()}
        how = "the tiny sample files (smoke tests only: too few positives for metrics)"
        warnings.warn(f"{name}: full files absent; using {how}", UserWarning, stacklevel=3)
    tables = {s: read_csv(p) for s, p in paths.items()}
    header = tables["train"][0]
    for split, rows in tables.items():
        if rows[0] != header or any(len(r) != len(header) for r in rows[1:]):
            raise ValueError(
                f"{paths[split]}: expected the header and {len(header)} columns of the train file"
            )
        missing = [c for c in labels if c not in header]
        if missing:
            raise ValueError(f"{paths[split]}: label column(s) {missing} not found")
    parts = {s: rows[1:] for s, rows in tables.items()}
    if "val" not in parts:
        # AliExpress ships train/test only: the last tenth of the training file validates.
        train = parts["train"]
        cut = len(train) - max(1, len(train) // 10)
        parts = {"train": train[:cut], "val": train[cut:], "test": parts["test"]}
    index = {c: i for i, c in enumerate(header)}
    features = [i for i, c in enumerate(header) if c not in labels and c not in drop]
    continuous = [i for i in features if header[i].startswith(is_dense)]
    categorical = [i for i in features if i not in continuous]
    first, second = labels
    targets = {
        first: lambda r, i=index[first]: float(r[i]),
        second: lambda r, i=index[second]: float(r[i]),
    }
    return tabular_splits(
        name, parts, targets, categorical, continuous, header, encoding, embed_dim,
        {"files": how},
    )  # fmt: skip


@register("ali_ccp")
def ali_ccp(
    root: str | Path | None = None, encoding: Encoding = "embedding", embed_dim: int = 8
) -> DataSplits:
    """Ali-CCP (Ma et al., SIGIR 2018, the ESMM data) in torch-rechub's preprocessed layout:
    23 label-encoded categorical fields, 8 dense ``D*`` columns, labels ``click`` and
    ``purchase`` (over every impression: the CTCVR label of ESMM; use
    ``create("esmm", ctr="click", ctcvr="purchase", ...)``).

    Reads ``ali_ccp_{train,val,test}.csv`` when present (the full data, same columns), else
    the local 100/50/50-row sample with a warning. Categorical values are re-coded from the
    training file (unseen -> 0), dense columns standardised with training statistics;
    ``embedding`` encoding by default (``metadata["feature_schema"]``).
    """
    folder = "ali_ccp_sample"
    full = {s: DataFile(f"ali_ccp_{s}.csv", None) for s in ("train", "val", "test")}
    sample = {
        "train": DataFile("ali_ccp_train_sample.csv", "398ec366c4a8a89e1503e5536793702a"),
        "val": DataFile("ali_ccp_val_sample.csv", "2cbd54519f6d6deb02443abfdea1e74e"),
        "test": DataFile("ali_ccp_test_sample.csv", "94c6f50b5fcd38afb98050dd886d7f5d"),
    }
    return _load(
        "ali_ccp", folder, full, sample, ("click", "purchase"), (), "D", root, encoding, embed_dim
    )


@register("aliexpress")
def aliexpress(
    root: str | Path | None = None, encoding: Encoding = "embedding", embed_dim: int = 8
) -> DataSplits:
    """AliExpress search logs (Li et al., CIKM 2020) in torch-rechub's layout: ``search_id``
    (dropped), 16 label-encoded ``categorical_*`` fields, 63 normalised ``numerical_*``
    columns, labels ``click`` and ``conversion``.

    Reads ``aliexpress_{train,test}.csv`` (the full data of one country, same columns) when
    present, else the local 100/20-row sample with a warning; the last tenth of the training
    file is the validation split. Preprocessing as :func:`ali_ccp`.
    """
    folder = "aliexpress_sample"
    full = {s: DataFile(f"aliexpress_{s}.csv", None) for s in ("train", "test")}
    sample = {
        "train": DataFile("aliexpress_train_sample.csv", "0f945ece360b22d97fe1f4613c4e5488"),
        "test": DataFile("aliexpress_test_sample.csv", "8b9f01ef9697daa4b34f20521dea3871"),
    }
    return _load(
        "aliexpress", folder, full, sample, ("click", "conversion"), ("search_id",), "numerical",
        root, encoding, embed_dim,
    )  # fmt: skip
