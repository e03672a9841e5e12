"""A JSON-lines metrics log (one object per line), appended and flushed per record."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


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
        ImportError: TensorBoard is not installed; the message names the extra to install.
    """

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(
                "TensorBoard logging needs the tensorboard package: "
                "pip install 'polytask[tensorboard]' (or set tensorboard=False)"
            ) from error
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        """Write ``{name: number or nested dict}`` as scalars ``prefix/name/...`` at ``step``."""
        for key, value in values.items():
            if isinstance(value, dict):
                self.scalars(f"{prefix}/{key}", value, step)
            elif isinstance(value, int | float):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines file."""
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
