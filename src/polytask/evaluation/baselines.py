"""A cache of single-task baselines, keyed by everything that determines them.

A baseline is one task trained alone by the same pipeline: same data set and options, same
architecture (with one head), same optimizer, schedule and seed. Its key hashes exactly those
fields, so a comparison never uses a baseline trained on other data, another model or another
budget; the entry stores the fields it was trained with, for inspection.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: Configuration fields that determine a single-task baseline (the balancer, output and
#: logging do not; the gradient level does not matter for one task).
BASELINE_FIELDS = ("dataset", "model", "optimizer", "schedule", "seed", "amp")


def default_cache_dir() -> Path:
    """``$POLYTASK_CACHE/baselines``, or ``~/.cache/polytask/baselines``."""
    root = os.environ.get("POLYTASK_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "polytask"
    return base / "baselines"


def baseline_spec(config: dict[str, Any], task: str) -> dict[str, Any]:
    """The fields of a configuration (as a plain dict) that determine ``task``'s baseline."""
    spec = {k: config.get(k) for k in BASELINE_FIELDS}
    spec["task"] = task
    spec["task_override"] = (config.get("tasks") or {}).get(task)
    return spec


def baseline_key(spec: dict[str, Any]) -> str:
    """A stable hash of a baseline spec."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class BaselineCache:
    """Single-task results on disk, one JSON file per key, written atomically."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def path(self, spec: dict[str, Any]) -> Path:
        """Where the baseline of ``spec`` is stored."""
        return self.folder / f"{spec['task']}-{baseline_key(spec)}.json"

    def get(self, spec: dict[str, Any]) -> dict[str, float] | None:
        """The cached test metrics ``{metric: value}`` of ``spec``'s task, or ``None``.

        Raises:
            ValueError: an entry exists under the key but was stored for another spec (a
                hash collision or a hand-edited file): it is never used silently.
        """
        path = self.path(spec)
        if not path.exists():
            return None
        entry = json.loads(path.read_text())
        if json.dumps(entry.get("spec"), sort_keys=True, default=str) != json.dumps(
            spec, sort_keys=True, default=str
        ):
            raise ValueError(f"baseline cache entry {path} does not match its key; delete it")
        metrics: dict[str, float] = entry["metrics"]
        return metrics

    def put(self, spec: dict[str, Any], metrics: dict[str, float], **extra: Any) -> Path:
        """Store ``metrics`` for ``spec`` (and ``extra`` provenance) atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(spec)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"spec": spec, "metrics": metrics, **extra}, indent=2, default=str)
        )
        tmp.replace(path)
        return path
