"""Checkpoints: written atomically, loaded with ``weights_only=True``; RNG state capture."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(ValueError):
    """A checkpoint cannot be read (truncated, not a checkpoint, objects that safe loading
    refuses) or written (a full disk); the message names the file and the fix."""


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` through a temporary file in the same folder and an atomic
    rename: a crash while writing leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:  # a full disk shows as either, depending on where
        raise CheckpointError(
            f"writing checkpoint {path} failed ({str(error).splitlines()[0][:120]}); the "
            "previous checkpoint is intact. Is the disk full? Free space or choose another "
            "output folder, then run the same command to resume"
        ) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (no arbitrary code runs).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # any failure to read the file: it is not a checkpoint
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({reason[:120]}): it is truncated or not a "
            "polytask checkpoint; run with --restart (or delete it) to start the run over"
        ) from error
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(state).__name__}, not a polytask checkpoint; "
            "run with --restart (or delete it) to start the run over"
        )
    return state


def rng_state() -> dict[str, Any]:
    """The state of every random generator a training step may use (torch CPU and CUDA,
    NumPy, Python), in a form ``weights_only`` loading accepts."""
    np_state: Any = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gauss": float(np_state[4]),
        },
        "python": list(_to_lists(random.getstate())),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gauss"],
        )
    )
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
