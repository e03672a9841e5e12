"""Classic regularised multi-task learning as scikit-learn estimators (``polytask.classic``).

Reference text 01's objective: ``T`` tasks, each with its own data ``D_t`` and linear model
``w_t``, ``min_W sum_t (1/(2 m_t)) sum_i (y_ti - x_ti w_t - b_t)^2 + lambda g(W)``; ``g`` says
how the tasks relate. Needs numpy, scipy and scikit-learn (``pip install
'polytask[classic]'``); imported lazily.

- :class:`MeanRegularizedMTL` (Evgeniou & Pontil 2004): tasks pulled towards their mean.
- :class:`JointFeatureSelectionMTL` (Argyriou et al. 2008; Liu et al. 2009): ``||W||_{2,1}``,
  the features every task uses.
- :class:`TraceNormMTL` (Ji & Ye 2009): ``||W||_*``, tasks in a low-dimensional subspace.
- :class:`GraphRegularizedMTL` (MALSAR's SRMTL): related tasks, given as a graph, alike.
- :class:`RelationshipMTL` (Zhang & Yeung 2010, MTRL): the task covariance learned with the
  weights (its step, :func:`~polytask.classic.task_covariance.omega_step`, is shared).
- Baselines: :class:`IndependentMTL` (each task alone) and :class:`PooledMTL` (one model).
- Data: :func:`stack_tasks` (per-task lists) and :func:`long_format` (a polytask dataset
  of per-task data, such as ``school``) give ``(X, y, task_ids)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from polytask._extras import missing_extra

__all__ = [
    "GraphRegularizedMTL",
    "IndependentMTL",
    "JointFeatureSelectionMTL",
    "MeanRegularizedMTL",
    "PooledMTL",
    "RelationshipMTL",
    "TraceNormMTL",
    "long_format",
    "stack_tasks",
]


def __getattr__(name: str) -> Any:
    modules = {
        "MeanRegularizedMTL": "polytask.classic.mean_regularized",
        "JointFeatureSelectionMTL": "polytask.classic.joint_feature_selection",
        "TraceNormMTL": "polytask.classic.trace_norm",
        "GraphRegularizedMTL": "polytask.classic.graph_regularized",
        "RelationshipMTL": "polytask.classic.mtrl",
        "IndependentMTL": "polytask.classic.baselines",
        "PooledMTL": "polytask.classic.baselines",
        "stack_tasks": "polytask.classic.data",
        "long_format": "polytask.classic.data",
    }
    if name not in modules:
        raise AttributeError(f"module 'polytask.classic' has no attribute {name!r}")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise missing_extra("polytask.classic", "classic") from None
    return getattr(importlib.import_module(modules[name]), name)
