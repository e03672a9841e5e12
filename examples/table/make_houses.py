"""Write ``houses.csv``: a generated table of 400 house sales for the ``table`` example.

Four tasks in very different units share the same causes (size, district, age, garden):
``price`` (currency, ~3e5), ``days_on_market`` (days, ~40), ``sold_above_ask`` (0/1) and
``energy_class`` (A-D). About 5% of each label is missing, as in real listings. The table
is generated with a fixed seed, so running this script again writes the same file:
``python examples/table/make_houses.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ROWS, SEED = 400, 2026
HERE = Path(__file__).parent


def houses(rows: int = ROWS, seed: int = SEED) -> dict[str, list[str]]:
    """The columns of the table, as the CSV cells (empty = missing label)."""
    g = np.random.default_rng(seed)
    area = g.gamma(9.0, 12.0, rows).round(1)  # m2, mean ~108
    rooms = np.clip((area / 25 + g.normal(0, 0.8, rows)).round(), 1, 9).astype(int)
    year = g.integers(1900, 2024, rows)
    district = g.choice(["centre", "harbour", "hills", "suburb"], rows, p=[0.2, 0.2, 0.25, 0.35])
    garden = np.where(g.random(rows) < 0.45, "yes", "no")
    premium = {"centre": 0.9, "harbour": 0.5, "hills": 0.2, "suburb": -0.4}
    place = np.array([premium[d] for d in district])
    age = (2024 - year) / 50
    quality = (
        0.012 * (area - 108) + place + 0.3 * (garden == "yes") - 0.35 * age
        + 0.1 * (rooms - 4) + 0.25 * g.normal(size=rows)
    )  # fmt: skip
    price = (310_000 * np.exp(0.35 * quality) + 8_000 * g.normal(size=rows)).round(-2)
    days = np.clip(45 - 14 * quality + 6 * g.normal(size=rows), 3, None).round()
    above = (quality + 0.4 * g.normal(size=rows) > 0.3).astype(int)
    energy = 1.4 * age - 0.6 * (year > 2000) + 0.3 * g.normal(size=rows)
    classes = np.array(["A", "B", "C", "D"])[np.digitize(energy, [0.3, 1.1, 2.1])]
    table = {
        "area_m2": area.astype(str).tolist(),
        "rooms": rooms.astype(str).tolist(),
        "year_built": year.astype(str).tolist(),
        "district": district.tolist(),
        "garden": garden.tolist(),
        "price": price.astype(int).astype(str).tolist(),
        "days_on_market": days.astype(int).astype(str).tolist(),
        "sold_above_ask": above.astype(str).tolist(),
        "energy_class": classes.tolist(),
    }
    for column in ("price", "days_on_market", "sold_above_ask", "energy_class"):
        for i in np.flatnonzero(g.random(rows) < 0.05):
            table[column][i] = ""
    return table


def write(path: Path = HERE / "houses.csv") -> Path:
    """Write the table to ``path``."""
    table = houses()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(table))
        writer.writerows(zip(*table.values(), strict=True))
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
