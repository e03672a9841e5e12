"""``polytask federate CONFIG``: a federated run from a YAML file with no code.

```yaml
dataset: {name: school}                 # per-task data: each task becomes a client
clients: {split: natural}               # or {split: dirichlet, task: ..., count: 10, alpha: 0.5}
model: {name: shared_bottom, options: {trunk_dims: [], head_dims: []}}
algorithm: {name: fedavg, options: {}}  # polytask list federated
local: {steps: 10, batch_size: 32, lr: 0.01, balancer: equal, level: representation}
rounds: 20
participation: {fraction: 1.0, stragglers: 0.0, straggler_mode: drop}
engine: core                            # core, flower (in this process) or simulation (Ray)
seed: 0
output: runs/federated-{dataset}-{algorithm}-seed{seed}-{fingerprint}
```

Natural clients (``school``, ``computer_survey``, ``parkinsons {mode: patients}``, a table
with a ``task_column``) train one task ``y`` whose target is standardised by the training
rows' pooled mean and deviation unless ``target_scale`` gives ``[mean, std]`` (or
``none``); a Dirichlet split keeps every task of the data set on every client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from polytask.federated.local_training import LocalConfig
from polytask.federated.rounds import RoundConfig
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
from polytask.training.run_folder import fingerprint

ENGINES = ("core", "flower", "simulation")


@dataclass
class ClientsConfig:
    """How the data become clients: ``natural`` (each task of per-task data),
    ``groups`` (the data set's row groups, ``metadata["groups"]``: each patient of
    ``parkinsons {mode: patient_targets}`` with both its tasks) or ``dirichlet`` (``count``
    clients, label skew of ``task`` by ``Dirichlet(alpha)``)."""

    split: Literal["natural", "groups", "dirichlet"] = "natural"
    task: str | None = None
    count: int = 10
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_range("count", self.count, low=1)
        check_range("alpha", self.alpha, above=0)
        if self.split == "dirichlet" and self.task is None:
            raise FieldError("task", "a Dirichlet split needs the task whose labels it skews")


@dataclass
class FederatedConfig:
    """A federated run: data, clients, the model every client trains, the algorithm,
    local training, rounds, participation, the engine, the seed and the run folder
    (``{dataset}``, ``{algorithm}``, ``{seed}`` and ``{fingerprint}`` are filled in)."""

    dataset: NamedConfig
    clients: ClientsConfig = field(default_factory=ClientsConfig)
    model: NamedConfig = field(default_factory=lambda: NamedConfig("shared_bottom"))
    algorithm: NamedConfig = field(default_factory=lambda: NamedConfig("fedavg"))
    local: LocalConfig = field(default_factory=LocalConfig)
    rounds: int = 20
    participation: RoundConfig = field(default_factory=RoundConfig)
    engine: str = "core"
    target_scale: Any = "auto"
    seed: int = 0
    output: str = "runs/federated-{dataset}-{algorithm}-seed{seed}-{fingerprint}"

    def __post_init__(self) -> None:
        from polytask.federated.registry import ALGORITHMS

        check_range("rounds", self.rounds, low=1)
        if self.algorithm.name not in ALGORITHMS:
            from polytask._registry import unknown_name_message

            raise FieldError("algorithm.name", unknown_name_message(
                "federated algorithm", self.algorithm.name, list(ALGORITHMS)))  # fmt: skip
        if self.engine not in ENGINES:
            from polytask._registry import unknown_name_message

            raise FieldError("engine", unknown_name_message("engine", self.engine, list(ENGINES)))
        scale = self.target_scale
        if not (scale in ("auto", None) or (isinstance(scale, list) and len(scale) == 2)):
            raise FieldError("target_scale", f"must be auto, null or [mean, std], got {scale!r}")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> FederatedConfig:
        """Load ``path``, apply ``key=value`` overrides, check every key and type."""
        data = merge(load_config_file(path), parse_overrides(overrides or []))
        return from_dict(cls, data)

    def settings(self) -> dict[str, Any]:
        """What defines the run: everything but the run folder, the engine (every engine
        computes the same run) and the number of rounds (a finished run goes on for more
        when asked). A resumed run must match it."""
        return {k: v for k, v in to_dict(self).items() if k not in ("output", "engine", "rounds")}

    def output_dir(self) -> Path:
        """The run folder, its placeholders filled in."""
        filled = self.output.format(
            dataset=self.dataset.name,
            algorithm=self.algorithm.name,
            seed=self.seed,
            fingerprint=fingerprint(self.settings()),
        )
        return Path(filled)


def algorithm_from(config: FederatedConfig) -> Any:
    """The configured algorithm; an option it does not have is one line naming its
    options."""
    import inspect

    from polytask.federated.registry import ALGORITHMS

    cls = ALGORITHMS[config.algorithm.name]
    known = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(config.algorithm.options) - set(known))
    if unknown:
        raise ConfigError(
            f"algorithm.options: {config.algorithm.name} has no option {unknown[0]!r}; its "
            f"options are {', '.join(known) or 'none'}"
        )
    return cls(**config.algorithm.options)
