"""Every classic estimator by name, as the CLI, the path search and the shared tests read
them: a new penalty is one entry here (and its module), never an edit to a test list.

Names only (no imports), so reading the registry does not need scikit-learn.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClassicMethod:
    """One penalty: its module, its regressor and classifier classes, the parameter a
    regularisation path varies, and keyword arguments the shared tests need (a graph)."""

    module: str
    regressor: str
    classifier: str
    path_parameter: str = "alpha"

    def load(self, kind: str = "regressor") -> Any:
        """The class (``kind`` is ``"regressor"`` or ``"classifier"``)."""
        module = importlib.import_module(f"polytask.classic.{self.module}")
        return getattr(module, getattr(self, kind))


METHODS: dict[str, ClassicMethod] = {
    "independent": ClassicMethod("baselines", "IndependentMTL", "IndependentMTLClassifier", "l2"),
    "pooled": ClassicMethod("baselines", "PooledMTL", "PooledMTLClassifier", "l2"),
    "mean_regularized": ClassicMethod(
        "mean_regularized", "MeanRegularizedMTL", "MeanRegularizedMTLClassifier"
    ),
    "joint_feature_selection": ClassicMethod(
        "joint_feature_selection", "JointFeatureSelectionMTL", "JointFeatureSelectionMTLClassifier"
    ),
    "trace_norm": ClassicMethod("trace_norm", "TraceNormMTL", "TraceNormMTLClassifier"),
    "graph_regularized": ClassicMethod(
        "graph_regularized", "GraphRegularizedMTL", "GraphRegularizedMTLClassifier"
    ),
    "relationship": ClassicMethod("mtrl", "RelationshipMTL", "RelationshipMTLClassifier"),
    "clustered": ClassicMethod("clustered", "ClusteredMTL", "ClusteredMTLClassifier"),
    "robust": ClassicMethod("robust", "RobustMTL", "RobustMTLClassifier"),
}


def class_modules() -> dict[str, str]:
    """Each public estimator class name -> its module (for ``polytask.classic``'s lazy
    attributes)."""
    out = {}
    for method in METHODS.values():
        out[method.regressor] = f"polytask.classic.{method.module}"
        out[method.classifier] = f"polytask.classic.{method.module}"
    return out
