"""``polytask classic CONFIG``: a classic estimator fitted on a polytask data set of
per-task data, from a YAML file with no code.

```yaml
dataset: {name: school}              # or computer_survey, parkinsons {mode: patients},
                                     # table {source: ..., task_column: ...}
method: {name: joint_feature_selection, options: {alpha: 0.1}}
search: {cv: 3, n_values: 12}        # optional: the path parameter chosen by ClassicMTLCV
output: runs/classic-{dataset}-{method}
```

Regression tasks (loss ``mse`` and the like) get the method's regressor, binary tasks
(``bce``) its logistic classifier. The estimator is fitted on the training split (the
search cross-validates inside it) and scored on the validation and test splits:
regression by MSE, nMSE (pooled MSE over the variance of the pooled targets) and
explained variance ``1 - nMSE``; classification by accuracy, log loss and ROC AUC. The run
folder gets ``results.json`` and ``model.npz`` (``coef``, ``intercept``, ``tasks``); each
run replaces them (fits take seconds, nothing is resumed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polytask.training.config import (
    ConfigError,
    FieldError,
    check_range,
    from_dict,
    load_config_file,
    merge,
    parse_overrides,
    to_dict,
)
from polytask.training.experiment_config import NamedConfig


@dataclass
class SearchConfig:
    """The regularisation path searched by :class:`~polytask.classic.ClassicMTLCV`."""

    values: list[float] | None = None
    n_values: int = 12
    eps: float | None = None
    cv: int = 3

    def __post_init__(self) -> None:
        check_range("n_values", self.n_values, low=1)
        check_range("cv", self.cv, low=2)
        check_range("eps", self.eps, above=0, optional=True)


@dataclass
class ClassicConfig:
    """A classic run: the data set, the method (a name of ``polytask.classic.METHODS`` and
    its estimator's options), an optional path search, and the run folder (``{dataset}``
    and ``{method}`` are filled in)."""

    dataset: NamedConfig
    method: NamedConfig = field(default_factory=lambda: NamedConfig("mean_regularized"))
    search: SearchConfig | None = None
    output: str = "runs/classic-{dataset}-{method}"

    def __post_init__(self) -> None:
        from polytask.classic.registry import METHODS

        if self.method.name not in METHODS:
            from polytask._registry import unknown_name_message

            raise FieldError("method.name", unknown_name_message("method", self.method.name,
                                                                 list(METHODS)))  # fmt: skip

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> ClassicConfig:
        """Load ``path``, apply ``key=value`` overrides, check every key and type (a
        relative table ``source`` is read beside the file)."""
        data = merge(load_config_file(path), parse_overrides(overrides or []))
        return from_dict(cls, data)


@dataclass
class ClassicResult:
    """What a run gives: the metrics per split, the chosen value (with a search), the
    fitted estimator, the seconds to fit and the run folder."""

    metrics: dict[str, dict[str, float]]
    estimator: Any
    chosen: dict[str, float]
    seconds: float
    output: Path


def _kind(tasks: list[Any]) -> str:
    kinds = {task.kind for task in tasks}
    if kinds == {"regression"}:
        return "regressor"
    if kinds == {"binary"}:
        return "classifier"
    described = ", ".join(f"{t.name} ({t.kind})" for t in tasks[:6])
    raise ConfigError(
        f"classic estimators take regression tasks or binary tasks, all of one kind; this data "
        f"set has {described}: use polytask train for multiclass or mixed tasks"
    )


def _scores(kind: str, estimator: Any, X: Any, y: Any, ids: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    if kind == "regressor":
        mse = float(np.mean((estimator.predict(X, task_ids=ids) - y) ** 2))
        nmse = mse / float(np.var(y))
        return {"mse": mse, "nmse": nmse, "explained_variance": 1 - nmse}
    proba = estimator.predict_proba(X, task_ids=ids)[:, 1]
    labels = estimator.classes_[(proba > 0.5).astype(int)]
    return {
        "accuracy": float(accuracy_score(y, labels)),
        "log_loss": float(log_loss(y, proba, labels=estimator.classes_)),
        "roc_auc": float(roc_auc_score(y, proba)) if len(np.unique(y)) == 2 else float("nan"),
    }


def run_classic(config: ClassicConfig, say: Any = print) -> ClassicResult:
    """Fit ``config``'s estimator on the training split and score every split."""
    import polytask.data
    from polytask.classic import ClassicMTLCV
    from polytask.classic.data import long_format
    from polytask.classic.registry import METHODS

    data = polytask.data.load(config.dataset.name, **config.dataset.options)
    assert isinstance(data, polytask.data.DataSplits)  # no split= given: all of them
    kind = _kind(data.tasks)
    method = METHODS[config.method.name]
    cls = method.load(kind)
    try:
        estimator = cls(**config.method.options)
    except TypeError:
        known = sorted(cls().get_params())
        unknown = sorted(set(config.method.options) - set(known))
        raise ConfigError(
            f"method.options: {cls.__name__} has no option {unknown[0]!r}; its options are "
            f"{', '.join(known)}"
        ) from None
    if config.search is not None:
        search = config.search
        estimator = ClassicMTLCV(estimator, values=search.values, n_values=search.n_values,
                                 eps=search.eps, cv=search.cv)  # fmt: skip
    X, y, ids = long_format(data.train)
    say(f"fitting {cls.__name__} on {len(y)} rows of {len(np.unique(ids))} tasks "
        f"({X.shape[1]} features) ...")  # fmt: skip
    started = time.perf_counter()
    estimator.fit(X, y, task_ids=ids)
    seconds = time.perf_counter() - started
    fitted = estimator.best_estimator_ if config.search is not None else estimator
    chosen = {method.path_parameter: estimator.best_value_} if config.search is not None else {}
    metrics = {}
    for split in ("val", "test"):
        rows = long_format(getattr(data, split))
        if len(rows[1]):
            metrics[split] = _scores(kind, fitted, *rows)
    output = Path(config.output.format(dataset=config.dataset.name, method=config.method.name))
    output.mkdir(parents=True, exist_ok=True)
    results = {"config": to_dict(config), "estimator": repr(fitted), "chosen": chosen,
               "metrics": metrics, "seconds": seconds}  # fmt: skip
    (output / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    np.savez(output / "model.npz", coef=fitted.coef_, intercept=fitted.intercept_,
             tasks=np.asarray(fitted.tasks_, dtype=str))  # fmt: skip
    return ClassicResult(metrics, fitted, chosen, seconds, output)
