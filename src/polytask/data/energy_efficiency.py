"""Energy efficiency of buildings (Tsanas & Xifara 2012): heating and cooling load."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import torch

from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, matrix_splits
from polytask.tasks.task import Task

FOLDER = "energy_efficiency"
FILE = DataFile(
    "ENB2012_data.xlsx",
    "f7e1e2e010bb8be818606b115e738da9",
    ("https://archive.ics.uci.edu/ml/machine-learning-databases/00242/ENB2012_data.xlsx",),
)
ROWS, COLUMNS = 768, 10
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def read_first_sheet(path: Path) -> list[list[str]]:
    """The cells of an .xlsx file's first sheet as strings, row by row (the standard
    library's zip and XML readers; shared strings resolved)."""
    with zipfile.ZipFile(path) as book:
        names = book.namelist()
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = [
                "".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t"))
                for si in root.findall("m:si", _NS)
            ]
        sheet = sorted(n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))[0]
        root = ElementTree.fromstring(book.read(sheet))
    rows = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells = []
        for cell in row.findall("m:c", _NS):
            value = cell.find("m:v", _NS)
            text = "" if value is None or value.text is None else value.text
            cells.append(shared[int(text)] if cell.get("t") == "s" and text else text)
        if any(cells):
            rows.append(cells)
    return rows


@register("energy_efficiency")
def energy_efficiency(
    root: str | Path | None = None,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> DataSplits:
    """UCI Energy Efficiency (Tsanas & Xifara 2012): 768 simulated buildings, 8 inputs
    (compactness, surface, wall and roof area, height, orientation, glazing area and its
    distribution) and two regression tasks, ``heating_load`` (Y1) and ``cooling_load`` (Y2).
    Rows split at random by ``fractions`` with ``seed``; inputs and targets standardised with
    training statistics.
    """
    rows = read_first_sheet(resolve(FOLDER, FILE, root))
    header, body = rows[0], rows[1:]
    if header[:COLUMNS] != [f"X{i}" for i in range(1, 9)] + ["Y1", "Y2"] or len(body) != ROWS:
        raise ValueError(f"ENB2012_data.xlsx: expected X1..X8, Y1, Y2 and {ROWS} rows")
    values = torch.tensor([[float(v) for v in r[:COLUMNS]] for r in body])
    tasks = [
        Task("heating_load", "mse", metrics=("mse", "mae")),
        Task("cooling_load", "mse", metrics=("mse", "mae")),
    ]
    targets = {"heating_load": values[:, 8], "cooling_load": values[:, 9]}
    return matrix_splits(
        "energy_efficiency", values[:, :8], targets, tasks, fractions, seed,
        {"split": f"random rows {fractions}"}, standardize_targets=True,
    )  # fmt: skip
