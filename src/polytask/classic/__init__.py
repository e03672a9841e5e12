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
- :class:`ClusteredMTL` (Zhou, Chen & Ye 2011): tasks in groups, the groups learned
  (convex relaxation).
- :class:`RobustMTL` (Chen, Zhou & Ye 2011): a low-rank part shared by most tasks plus
  outlier tasks.
- Baselines: :class:`IndependentMTL` (each task alone) and :class:`PooledMTL` (one model).
- Each has a logistic twin for binary labels, named ``...Classifier``
  (:class:`JointFeatureSelectionMTLClassifier`, ...); :data:`METHODS` lists them by name.
- :class:`ClassicMTLCV`: the regularisation chosen by cross-validation along a
  warm-started path (as scikit-learn's ``LassoCV``), for any of them.
- Data: :func:`stack_tasks` (per-task lists) and :func:`long_format` (a polytask dataset
  of per-task data, such as ``school``) give ``(X, y, task_ids)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from polytask._extras import missing_extra
from polytask.classic.registry import METHODS, class_modules

_OTHERS = {
    "ClassicMTLCV": "polytask.classic.path_cv",
    "stack_tasks": "polytask.classic.data",
    "long_format": "polytask.classic.data",
}
_MODULES = {**class_modules(), **_OTHERS}
__all__ = [*sorted(_MODULES), "METHODS"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'polytask.classic' has no attribute {name!r}")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise missing_extra("polytask.classic", "classic") from None
    return getattr(importlib.import_module(_MODULES[name]), name)
