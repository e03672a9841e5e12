"""Numbers as report and terminal text."""

from __future__ import annotations

import math


def number_text(value: float, decimals: int = 4) -> str:
    """``value`` with ``decimals`` decimals when that shows it well (``0.8811``, ``46.1375``),
    in scientific notation with as many significant digits when it is very large or very
    small (an MSE in squared currency units: ``1.0523e+09``, not ``1052337024.0000``)."""
    if not math.isfinite(value) or value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.{decimals}f}"
    return f"{value:.{decimals}e}"
