"""Statistics over repeated runs: mean, standard deviation, t confidence intervals, ranks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

from polytask.evaluation.text import needs_scientific, number_text


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and two-sided confidence interval of ``n`` values.

    ``half_width = t_{(1+c)/2, n-1} * std / sqrt(n)`` (Student's t, the values assumed
    independent and roughly normal); ``nan`` for ``n = 1``.
    """

    mean: float
    std: float
    n: int
    confidence: float
    half_width: float

    @property
    def low(self) -> float:
        """Lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.mean + self.half_width

    def format(self, digits: int = 4) -> str:
        """``mean +- half_width`` (``mean`` alone for one value); very large or small values
        in scientific notation (:func:`~polytask.evaluation.text.number_text`)."""
        if self.n < 2:
            return number_text(self.mean, digits)
        if needs_scientific(self.mean):
            return f"{self.mean:.{digits}e} +- {self.half_width:.1e}"
        return f"{self.mean:.{digits}f} +- {self.half_width:.{digits}f}"


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """:class:`Summary` of ``values`` (one per seed).

    Raises:
        ValueError: no values, a non-finite value, or a confidence outside (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    data = [float(v) for v in values]
    if not data:
        raise ValueError("summarize needs at least one value")
    if not all(math.isfinite(v) for v in data):
        raise ValueError(f"non-finite value among {data}")
    n = len(data)
    mean = sum(data) / n
    if n < 2:
        return Summary(mean, math.nan, n, confidence, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in data) / (n - 1))
    t = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1))
    return Summary(mean, std, n, confidence, t * std / math.sqrt(n))


def mean_rank(
    scores: Mapping[str, Mapping[str, float]], higher_is_better: Mapping[str, bool]
) -> dict[str, float]:
    """Mean rank of each method over the columns (task metrics) of a comparison.

    Args:
        scores: ``{method: {column: value}}``; every method must have every column.
        higher_is_better: ``{column: bool}``.

    Returns:
        ``{method: mean rank}`` (1 is best in every column; ties share the mean of their ranks).
    """
    methods = list(scores)
    if not methods:
        raise ValueError("mean_rank needs at least one method")
    columns = list(higher_is_better)
    for method in methods:
        missing = [c for c in columns if c not in scores[method]]
        if missing:
            raise KeyError(f"method {method!r} has no value for {missing}")
    total = dict.fromkeys(methods, 0.0)
    for column in columns:
        sign = -1.0 if higher_is_better[column] else 1.0
        ordered = sorted(methods, key=lambda m: sign * scores[m][column])
        i = 0
        while i < len(ordered):
            j = i
            value = scores[ordered[i]][column]
            while j + 1 < len(ordered) and scores[ordered[j + 1]][column] == value:
                j += 1
            rank = (i + j) / 2 + 1
            for m in ordered[i : j + 1]:
                total[m] += rank
            i = j + 1
    return {m: total[m] / len(columns) for m in methods}
