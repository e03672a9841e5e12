"""delta-m/delta-p, confidence intervals, ranks and Pareto fronts against hand-computed values."""

from __future__ import annotations

import math

import pytest

from polytask.evaluation import delta_m, delta_p, mean_rank, pareto_front, summarize
from polytask.evaluation.measures import relative_changes

METRICS = {"a": {"accuracy": 0.9, "mae": 0.5}, "b": {"rmse": 2.0}}
BASE = {"a": {"accuracy": 0.8, "mae": 0.4}, "b": {"rmse": 2.5}}
DIRS = {"a": {"accuracy": True, "mae": False}, "b": {"rmse": False}}


def test_delta_m_and_delta_p_by_hand_with_mixed_directions() -> None:
    # a/accuracy: -(0.9 - 0.8)/0.8 = -0.125 (better); a/mae: +(0.5 - 0.4)/0.4 = 0.25 (worse);
    # b/rmse: (2.0 - 2.5)/2.5 = -0.2 (better).
    changes = relative_changes(METRICS, BASE, DIRS)
    assert changes["a"] == pytest.approx({"accuracy": -0.125, "mae": 0.25})
    assert changes["b"] == pytest.approx({"rmse": -0.2})
    assert delta_m(METRICS, BASE, DIRS) == pytest.approx(100 * (-0.125 + 0.25 - 0.2) / 3)
    assert delta_m(METRICS, BASE, DIRS) == pytest.approx(-2.5)
    # delta-p: task a's mean 0.0625, task b -0.2 -> -6.875 %.
    assert delta_p(METRICS, BASE, DIRS) == pytest.approx(-6.875)
    assert delta_m(METRICS, METRICS, DIRS) == 0.0
    assert delta_m(METRICS, BASE, DIRS, tasks=["b"]) == pytest.approx(-20.0)


def test_delta_m_errors_name_the_cause() -> None:
    with pytest.raises(KeyError, match="no single-task baseline for task 'b'"):
        delta_m(METRICS, {"a": BASE["a"]}, DIRS)
    with pytest.raises(KeyError, match="no metric 'mae'"):
        delta_m(METRICS, {"a": {"accuracy": 0.8}, "b": BASE["b"]}, DIRS)
    with pytest.raises(ValueError, match="is 0"):
        delta_m(METRICS, {"a": {"accuracy": 0.0, "mae": 0.4}, "b": BASE["b"]}, DIRS)


def test_confidence_interval_matches_the_t_distribution() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.mean == 2.5 and s.n == 4
    assert s.std == pytest.approx(math.sqrt(5 / 3))
    # t_{0.975, 3} = 3.182446 (statistical tables).
    assert s.half_width == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    assert (s.low, s.high) == pytest.approx((2.5 - s.half_width, 2.5 + s.half_width))
    s99 = summarize([1.0, 2.0, 3.0, 4.0], confidence=0.99)
    assert s99.half_width == pytest.approx(5.840909 * math.sqrt(5 / 3) / 2, rel=1e-6)
    one = summarize([0.7])
    assert one.mean == 0.7 and math.isnan(one.half_width) and one.format() == "0.7000"
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, float("nan")])


def test_mean_rank_with_ties() -> None:
    scores = {"a": {"x": 0.9, "y": 2.0}, "b": {"x": 0.8, "y": 1.0}, "c": {"x": 0.9, "y": 3.0}}
    ranks = mean_rank(scores, {"x": True, "y": False})
    assert ranks == pytest.approx({"a": 1.75, "b": 2.0, "c": 2.25})


def test_pareto_front_with_dominated_tied_and_duplicate_points() -> None:
    points = [(1, 1), (2, 2), (2, 2), (3, 1), (1, 3), (0, 0), (3, 0.5), (2, 2)]
    assert pareto_front(points, [True, True]) == [1, 2, 3, 4, 7]
    # Second objective lower-is-better: (3, 0.5) and (0, 0) now lead.
    assert pareto_front(points, [True, False]) == [5, 6]
    assert pareto_front([(1, 1)], [True, True]) == [0]
    with pytest.raises(ValueError, match="2 objectives"):
        pareto_front([(1, 2, 3)], [True, True])
