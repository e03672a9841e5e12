"""Ctrl-C and ``SIGTERM`` during training: finish the step, write a checkpoint, then stop.

A scheduler or ``kill`` sends ``SIGTERM``; a terminal sends ``SIGINT``. Both set a flag that
the training loop reads after each step; it then writes a checkpoint and raises
:class:`TrainingInterrupted` (a ``KeyboardInterrupt``), which the ``polytask`` command turns
into one line and exit status ``128 + signal``. A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after writing a checkpoint.

    Attributes:
        signum: the signal's number (``SIGINT`` 2, ``SIGTERM`` 15).
        checkpoint: the checkpoint written before stopping (``None`` without a run folder).
    """

    def __init__(self, signum: int, checkpoint: str | None) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.checkpoint = checkpoint


class StopRequest:
    """The signal that asked training to stop (``None`` while none has)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """Within the block, ``SIGINT`` and ``SIGTERM`` set :attr:`signum` instead of killing
        the process (main thread only: elsewhere Python delivers no signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.signum is not None:  # a second signal stops at once
                raise TrainingInterrupted(signum, None)
            self.signum = signum
            name = signal.Signals(signum).name
            print(f"\n{name}: finishing this step and writing a checkpoint", file=sys.stderr)

        previous = {s: signal.signal(s, handler) for s in SIGNALS}
        try:
            yield
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
