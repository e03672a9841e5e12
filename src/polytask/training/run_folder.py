"""A run folder holds one run: one process at a time, settings that match, logs that
continue exactly from the checkpoint, no temporary files left behind.

- :class:`RunFolder` locks ``run_dir/.lock`` with ``flock`` for as long as a run writes there.
  The kernel drops the lock with the process, so a run killed by ``kill -9`` never blocks the
  next one; a second live run is refused, naming the holder's process id. Taking the lock
  also removes temporary checkpoint files (``checkpoints/.*.tmp``) left by a killed writer.
- :func:`settings_differences` compares the settings that define a run (stored in its
  checkpoint) with the current ones; :data:`MAY_CHANGE_ON_RESUME` lists the trainer settings
  that may differ on resume (training length, logging, where and how fast it runs).
- :func:`truncate_logs` cuts every log file (``metrics.jsonl``, ``metrics.csv``) back to the
  size it had when the checkpoint was written, so a resumed run does not log the lost steps
  twice. (TensorBoard's event files are not cut: TensorBoard shows the steps again.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

MAY_CHANGE_ON_RESUME = frozenset(
    {
        "epochs",
        "max_steps",
        "patience",
        "log_every",
        "checkpoint_every",
        "progress",
        "run_dir",
        "tensorboard",
        "csv",
        "keep_freed_memory",
        "eval_batch_size",
        "device",
    }
)
"""Trainer settings a resumed run may change: how long it trains (``epochs``, ``max_steps``,
``patience``), what it logs and how often it checkpoints, and where it runs. Everything else
(batch size, level, seed, clipping, monitor, optimizer, scheduler, balancer, tasks, model,
and whatever the caller adds) defines the run."""


class RunMismatchError(ValueError):
    """A run folder holds a run whose settings differ from the current ones."""


class RunFolderInUseError(RuntimeError):
    """Another live process is writing into the run folder."""


# Folders this process holds, with a count (the experiment and its trainer both take it).
_HELD: dict[Path, tuple[TextIO, int]] = {}


class RunFolder:
    """The lock of a run folder, as a context manager (re-entrant within one process).

    Raises:
        RunFolderInUseError: another process holds the folder; the message names its process id.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

    def __enter__(self) -> RunFolder:
        held = _HELD.get(self.path)
        if held is not None:
            _HELD[self.path] = (held[0], held[1] + 1)
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        handle = (self.path / ".lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderInUseError(
                f"run folder {self.path} is in use by process {owner}; wait for that run to "
                "finish, or choose another output folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _HELD[self.path] = (handle, 1)
        for orphan in (self.path / "checkpoints").glob(".*.tmp"):
            orphan.unlink(missing_ok=True)  # a writer killed mid-save (we hold the lock)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        handle, count = _HELD[self.path]
        if count > 1:
            _HELD[self.path] = (handle, count - 1)
            return
        del _HELD[self.path]
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c[0]": 2}``."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out if out else {prefix: []}
    return {prefix: value}


def settings_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: saved -> current`` for every setting that differs (missing ones as ``-``)."""
    a, b = flatten(saved), flatten(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "-") != b.get(key, "-"):
            lines.append(f"{key}: {a.get(key, '-')!r} -> {b.get(key, '-')!r}")
    return lines


def fingerprint(settings: Mapping[str, Any]) -> str:
    """Eight hex digits of the SHA-256 of the settings (canonical JSON)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def log_files(loggers: Iterable[object]) -> list[Path]:
    """The files that ``loggers`` append to (those with a ``path``: JSON lines, CSV)."""
    paths = (getattr(logger, "path", None) for logger in loggers)
    return [path for path in paths if isinstance(path, Path)]


def log_sizes(loggers: Iterable[object]) -> dict[str, int]:
    """``{file name: size now}`` of every log file, stored in a checkpoint."""
    return {p.name: p.stat().st_size if p.exists() else 0 for p in log_files(loggers)}


def truncate_logs(loggers: Iterable[object], sizes: Mapping[str, int]) -> None:
    """Cut every log file back to its size at the checkpoint (records written after it)."""
    for path in log_files(loggers):
        size = sizes.get(path.name)
        if size is not None and path.exists() and path.stat().st_size > size:
            with path.open("r+") as handle:
                handle.truncate(size)


RUN_OUTPUTS = (
    "checkpoints",
    "tensorboard",
    "metrics.jsonl",
    "metrics.csv",
    "results.json",
    "config.yaml",
    "model.yaml",
)
"""What a run writes into its folder (reports too: ``report*``), removed by
:func:`clear_run`."""


def clear_run(path: str | Path) -> None:
    """Remove a run's outputs from its folder so that it starts over (hold the folder's
    lock, :class:`RunFolder`, while calling this)."""
    import shutil

    folder = Path(path)
    for name in RUN_OUTPUTS:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for report in folder.glob("report*"):
        report.unlink()


def mismatch_message(
    folder: Path | None,
    differences: list[str],
    command: str = "polytask train",
    python: str = "run_experiment(config, restart=True)",
) -> str:
    """What differs between the run in ``folder`` and the current settings, and the fix
    (``command ... --restart``, or ``python`` in Python)."""
    shown = "\n  ".join(differences[:12])
    more = f"\n  ... and {len(differences) - 12} more" if len(differences) > 12 else ""
    return (
        f"run folder {folder} holds a run with other settings ({len(differences)} differ):\n"
        f"  {shown}{more}\n"
        "Resuming would mix two runs. Use another output folder for the new settings (the "
        "default folder name carries a fingerprint of them), or start this run over: "
        f"{command} ... --restart (in Python: {python})."
    )
