"""Reading a user's table (CSV, Parquet or a pandas DataFrame) into named columns of cells,
and parsing cells as numbers with missing values marked."""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polytask._registry import unknown_name_message

Columns = dict[str, list[str]]
"""A table as ``{column name: cells}``, every cell a string (``""`` when missing)."""

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
"""Cells read as missing (compared case-insensitively, spaces stripped), as pandas' default
``na_values`` read them; a DataFrame's ``None`` and ``NaN`` are missing too."""

PARQUET_HINT = "reading Parquet needs pyarrow: pip install 'polytask[table]'"


class TableError(ValueError):
    """A table that cannot be read as the configuration says: the message names the file,
    the column and what to change."""


def is_missing(cell: str) -> bool:
    """Whether ``cell`` is a missing value (:data:`MISSING`)."""
    return cell.strip().lower() in MISSING


def _cell(value: Any) -> str:
    """A DataFrame or Parquet value as a cell string (``None`` and NaN become ``""``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _from_mapping(data: dict[str, Sequence[Any]], where: str) -> Columns:
    columns = {str(name): [_cell(v) for v in values] for name, values in data.items()}
    lengths = {len(v) for v in columns.values()}
    if not columns or lengths == {0}:
        raise TableError(f"{where}: the table has no rows")
    return columns


def _read_csv(path: Path) -> Columns:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    delimiter = "\t" if ".tsv" in path.suffixes else ","
    with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        rows = [r for r in reader if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise TableError(f"{path}: needs a header line and at least one data row")
    header = [h.strip() for h in rows[0]]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated or "" in header:
        raise TableError(f"{path}: the header needs unique, non-empty column names {repeated}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise TableError(
                f"{path}, line {number}: {len(row)} fields where the header has {len(header)}"
            )
    return {name: [r[j].strip() for r in rows[1:]] for j, name in enumerate(header)}


def _read_parquet(path: Path) -> Columns:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(PARQUET_HINT) from None
    return _from_mapping(pq.read_table(path).to_pydict(), str(path))


def read_table(source: Any) -> tuple[Columns, str]:
    """The columns of ``source`` and a name for messages.

    Args:
        source: a path to a CSV file (``.csv``, ``.tsv``, ``.gz`` compressed too; the first
            line is the header) or a Parquet file (``.parquet``, ``.pq``; needs pyarrow), or
            a pandas DataFrame (or any object with ``columns`` and ``to_dict("list")``).
    """
    if hasattr(source, "columns") and hasattr(source, "to_dict"):
        return _from_mapping(source.to_dict("list"), "the DataFrame"), "the DataFrame"
    if not isinstance(source, str | Path):
        raise TableError(
            f"a table source is a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise TableError(f"table file {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path), str(path)
    return _read_csv(path), str(path)


def require_columns(columns: Columns, names: Sequence[str], what: str, where: str) -> None:
    """Raise :class:`TableError` for the first of ``names`` that is not a column, naming the
    closest columns."""
    for name in names:
        if name not in columns:
            raise TableError(f"{where}: {unknown_name_message(what, name, list(columns))}")


def numbers(cells: Sequence[str], what: str) -> np.ndarray:
    """The cells as float64, NaN where missing; :class:`TableError` naming ``what`` and the
    first data row (1 = the first row after the header) that is not a number."""
    try:  # numpy parses a column of plain numbers in C; "nan" is NaN there too
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass  # missing-value words or a cell that is not a number: cell by cell
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        if is_missing(cell):
            out[i] = np.nan
            continue
        try:
            out[i] = float(cell)
        except ValueError:
            raise TableError(f"{what} needs numbers; data row {i + 1} has {cell!r}") from None
    return out


def sorted_values(values: set[str]) -> list[str]:
    """Distinct cell values in order: numerically when they are all numbers (``2`` before
    ``10``), as text otherwise."""
    return sorted(values, key=float) if is_numeric(list(values)) else sorted(values)


def is_numeric(cells: Sequence[str]) -> bool:
    """Whether every present cell parses as a number."""
    try:
        numbers(cells, "")
    except TableError:
        return False
    return True
