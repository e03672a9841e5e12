"""Evaluation (``polytask.evaluation``): delta-m and delta-p against single-task baselines,
statistics over seeds, Pareto fronts, the seesaw diagnosis, plots and reports."""

from polytask.evaluation.measures import delta_m, delta_p, relative_changes
from polytask.evaluation.pareto import dominates, pareto_front
from polytask.evaluation.stats import Summary, mean_rank, summarize

__all__ = [
    "Summary",
    "delta_m",
    "delta_p",
    "dominates",
    "mean_rank",
    "pareto_front",
    "relative_changes",
    "summarize",
]
