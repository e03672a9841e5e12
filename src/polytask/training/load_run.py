"""``polytask.load_run(folder)``: a finished (or interrupted) run folder back as a model you
can predict with, its tasks and its configuration."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from polytask.data.dataset import Inputs, TensorTaskDataset
from polytask.models.base import MultiTaskModel
from polytask.tasks.task import Task
from polytask.tasks.taskset import TaskSet
from polytask.training import checkpoint as ckpt

MODEL_FILE = "model.yaml"
"""The run folder's record of how to rebuild its model: the registry name, the options the
experiment resolved (heads, input size, vocabulary, feature schema) and the tasks."""


def write_model_record(folder: Path, model: MultiTaskModel, tasks: list[Task]) -> None:
    """Write :data:`MODEL_FILE` (plain YAML, read back with ``safe_load``): the model's
    ``build_spec`` (set by :func:`polytask.models.create`; ``None`` for a model of your own,
    which :func:`load_run` then needs as ``model=``) and the tasks."""
    spec = getattr(model, "build_spec", None)
    record = {
        "name": None if spec is None else spec["name"],
        "options": None if spec is None else spec["options"],
        "tasks": [
            {k: v for k, v in dataclasses.asdict(t).items() if k != "loss" or isinstance(v, str)}
            for t in tasks
        ],
    }
    (folder / MODEL_FILE).write_text(yaml.safe_dump(_yaml_ready(record), sort_keys=False))


def _yaml_ready(value: Any) -> Any:
    """``value`` with tuples as lists and keys as strings (``yaml.safe_dump`` takes it)."""
    if isinstance(value, dict):
        return {str(k): _yaml_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_yaml_ready(v) for v in value]
    return value


@dataclass
class LoadedRun:
    """A run folder, loaded.

    Attributes:
        model: the model with the run's best validation weights (its last weights when it
            had no validation), in eval mode on the CPU.
        tasks: the run's tasks.
        config: the run's configuration (``config.yaml``) as a plain dict.
        results: ``results.json`` when the run finished (else ``None``).
        folder: where it was loaded from.
    """

    model: MultiTaskModel
    tasks: TaskSet
    config: dict[str, Any]
    results: dict[str, Any] | None
    folder: Path

    @torch.no_grad()
    def predict(
        self, inputs: Inputs | TensorTaskDataset, batch_size: int = 1024
    ) -> dict[str, Tensor]:
        """The model's predictions per task for ``inputs`` (a tensor ``(N, ...)``, named
        tensors, or a dataset), in batches, without gradients: logits for ``bce``/``ce``
        tasks, values for regression tasks in the target's own units (a task's
        ``target_scale`` undone), max-marginal scores for ``crf`` tasks (their
        ``argmax(-1)`` is the Viterbi path; :meth:`~polytask.tasks.TaskSet.readable`).
        ``{task: (N, ...)}``."""
        if isinstance(inputs, TensorTaskDataset):
            inputs = inputs.inputs
        self.model.eval()
        first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
        parts: dict[str, list[Tensor]] = {t: [] for t in self.tasks.names}
        for start in range(0, int(first.shape[0]), batch_size):
            piece = (
                {k: v[start : start + batch_size] for k, v in inputs.items()}
                if isinstance(inputs, dict)
                else inputs[start : start + batch_size]
            )
            out = self.tasks.readable(self.model(piece))
            for task in parts:
                parts[task].append(out[task])
        return {task: torch.cat(chunks) for task, chunks in parts.items()}


def load_run(folder: str | Path, model: MultiTaskModel | None = None) -> LoadedRun:
    """Load a run folder written by ``polytask train``,
    :func:`~polytask.training.experiment.run_experiment` or a
    :class:`~polytask.training.Trainer` with a ``run_dir``.

    Args:
        folder: the run folder.
        model: a fresh instance of the run's model, for a model not built by
            :func:`polytask.models.create` (its weights are loaded into it).

    Raises:
        FileNotFoundError: the folder, its ``model.yaml`` or its checkpoint is missing (the
            message names which and why).
        ValueError: the run's model cannot be rebuilt from the folder and none was given.
    """
    from polytask import models

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {folder} does not exist")
    record_path = folder / MODEL_FILE
    if not record_path.is_file():
        raise FileNotFoundError(
            f"{record_path} is missing: the folder holds no run, or one written by a polytask "
            "older than load_run (retrain it, or rebuild the model and load "
            "checkpoints/last.pt yourself)"
        )
    record = yaml.safe_load(record_path.read_text())
    if model is None:
        if record.get("name") is None:
            raise ValueError(
                f"{folder}: the run's model was not built by polytask.models.create, so it "
                "cannot be rebuilt from the folder; pass a fresh instance: "
                "load_run(folder, model=MyModel(...))"
            )
        model = models.create(record["name"], **record["options"])
    state = ckpt.load(folder / "checkpoints" / "last.pt")
    model.load_state_dict(state.get("best_model") or state["model"])
    model.eval()
    tasks = TaskSet(
        [Task(**{**t, "metrics": tuple(t.get("metrics", ()))}) for t in record["tasks"]]
    )
    config_path = folder / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    results_path = folder / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else None
    return LoadedRun(model, tasks, config, results, folder)
