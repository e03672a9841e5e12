"""Numbers as report and terminal text."""

from __future__ import annotations

import math


def needs_scientific(value: float) -> bool:
    """Whether ``value`` is too large or too small to read with a few fixed decimals
    (``|value|`` outside ``[1e-3, 1e5)``, zero and non-finite values excepted)."""
    return math.isfinite(value) and value != 0 and not 1e-3 <= abs(value) < 1e5


def number_text(value: float, decimals: int = 4) -> str:
    """``value`` with ``decimals`` decimals when that shows it well (``0.8811``, ``46.1375``),
    in scientific notation with as many significant digits when it is very large or very
    small (an MSE in squared currency units: ``1.0523e+09``, not ``1052337024.0000``)."""
    return f"{value:.{decimals}e}" if needs_scientific(value) else f"{value:.{decimals}f}"
