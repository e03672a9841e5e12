"""Loggers behind one interface: ``write(kind, **fields)`` for every record the trainer
makes (``start``, ``train``, ``epoch``, ``resume``, ``test`` ...). JSON lines always (the run
folder's ``metrics.jsonl``, which reports read), CSV and TensorBoard on request, and any
object with that method that the user passes (``Trainer(..., loggers=[...])``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from polytask._extras import missing_extra


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Logger(Protocol):
    """What the trainer calls: one record of a kind with its fields (numbers, strings,
    nested dicts and lists; ``step`` and ``epoch`` among them where they apply)."""

    def write(self, kind: str, **fields: Any) -> None:
        """Record ``fields`` under ``kind``."""


def scalars(fields: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a nested record as ``("a/b/c", value)`` (strings and lists of lists
    skipped)."""
    if isinstance(fields, dict):
        for key, value in fields.items():
            yield from scalars(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(fields, list | tuple):
        for i, value in enumerate(fields):
            if isinstance(value, int | float) and not isinstance(value, bool):
                yield f"{prefix}/{i}", float(value)
    elif isinstance(fields, int | float) and not isinstance(fields, bool):
        yield prefix, float(fields)


class CsvLogger:
    """Every number of every record as one CSV row ``kind, step, epoch, name, value`` (a long
    table that any spreadsheet or ``pandas.read_csv`` pivots)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text("kind,step,epoch,name,value\n")

    def write(self, kind: str, **fields: Any) -> None:
        step, epoch = fields.get("step", ""), fields.get("epoch", "")
        rows = [
            f"{kind},{step},{epoch},{name},{value!r}"
            for name, value in scalars(
                {k: v for k, v in fields.items() if k not in ("step", "epoch")}
            )
        ]
        if rows:
            with self.path.open("a") as handle:
                handle.write("\n".join(rows) + "\n")


class JsonlLogger:
    """Appends records ``{"kind": ..., "time": ..., **fields}`` to ``path`` (or nowhere)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, **fields: Any) -> None:
        """Append one record (non-finite floats are written as strings, keeping valid JSON)."""
        if self.path is None:
            return
        record = {"kind": kind, "time": round(time.time(), 3), **_clean(fields)}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


class TensorBoardLogger:
    """Scalars to TensorBoard (optional extra: ``pip install 'polytask[tensorboard]'``).

    Raises:
        MissingExtraError: TensorBoard is not installed; the message names the extra.
    """

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise missing_extra(
                "TensorBoard logging", "tensorboard", "set tensorboard=false"
            ) from error
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, kind: str, **fields: Any) -> None:
        """Every number of the record as a scalar ``kind/name/...`` at its ``step``."""
        step = int(fields.get("step", 0))
        rest = {k: v for k, v in fields.items() if k not in ("step", "epoch", "config")}
        for name, value in scalars(rest, kind):
            self.writer.add_scalar(name, value, step)
        self.writer.flush()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines file."""
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
