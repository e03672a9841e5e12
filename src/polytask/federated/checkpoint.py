"""A federated run's checkpoint, in two parts as the run itself is split:

- the server's (``checkpoints/server.pt``): the global arrays after the last completed
  round, every round's client metrics, and the settings that define the run; written by
  the server after each round's aggregation, which marks the round complete;
- each client's private state (``checkpoints/clients/client<k>.pt``, and the previous one
  as ``client<k>.prev.pt``), stamped with the round it was written after; written by the
  client itself (by the ``ClientApp`` on Flower), so private state never travels.

Resuming after round ``R`` restores the global arrays and, for each client, its newest
state stamped ``<= R`` (a client may have written round ``R + 1`` before the server could:
that state is from a round that will be run again). No random generator state is saved:
every draw of a round is seeded by the run's seed, the round and the client, so a resumed
run equals one that never stopped. Files are written atomically (a crash mid-write leaves
the previous file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from polytask.federated.arrays import Arrays
from polytask.federated.rounds import FederatedRun
from polytask.training.checkpoint import load, save_atomic

SERVER = "server.pt"


def _tensors(arrays: Arrays) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(value.copy()) for name, value in arrays.items()}


def _arrays(tensors: dict[str, torch.Tensor]) -> Arrays:
    return {name: value.numpy() for name, value in tensors.items()}


class ClientStates:
    """The clients' private states under ``folder`` (``checkpoints/clients``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._rounds: dict[int, int] = {}  # the round of each client's newest file, once known

    def _path(self, client: int, previous: bool = False) -> Path:
        return self.folder / f"client{client}{'.prev' if previous else ''}.pt"

    def _newest_round(self, client: int) -> int | None:
        """The round of client ``client``'s newest file (read from disk once per process,
        then remembered: saves need not load the file they replace)."""
        if client not in self._rounds:
            current = self._path(client)
            if not current.exists():
                return None
            self._rounds[client] = int(load(current)["round"])
        return self._rounds[client]

    def save(self, client: int, after_round: int, private: Arrays) -> None:
        """Keep client ``client``'s state after round ``after_round`` (the newer file
        becomes the previous one, unless it is from this round or a later one, which are
        replaced)."""
        current = self._path(client)
        newest = self._newest_round(client)
        if newest is not None and newest < after_round:
            current.replace(self._path(client, previous=True))
        save_atomic({"round": after_round, "arrays": _tensors(private)}, current)
        self._rounds[client] = after_round

    def load(self, client: int, up_to_round: int) -> Arrays:
        """Client ``client``'s newest state stamped ``<= up_to_round`` (empty if none)."""
        for path in (self._path(client), self._path(client, previous=True)):
            if path.exists():
                state = load(path)
                if int(state["round"]) <= up_to_round:
                    return _arrays(state["arrays"])
        return {}


def save_server(folder: str | Path, run: FederatedRun, settings: dict[str, Any]) -> None:
    """The server's part after ``len(run.history)`` rounds."""
    history = [{str(k): v for k, v in metrics.items()} for metrics in run.history]
    state = {"arrays": _tensors(run.global_arrays), "history": json.dumps(history),
             "settings": json.dumps(settings, sort_keys=True, default=str)}  # fmt: skip
    save_atomic(state, Path(folder) / SERVER)


def load_server(folder: str | Path) -> tuple[Arrays, list[dict[int, dict[str, float]]], dict]:
    """The global arrays, the history and the settings saved by :func:`save_server`."""
    state = load(Path(folder) / SERVER)
    history = [{int(k): v for k, v in metrics.items()} for metrics in json.loads(state["history"])]
    return _arrays(state["arrays"]), history, json.loads(state["settings"])


def restored_run(folder: str | Path, num_clients: int) -> FederatedRun | None:
    """The run saved under ``folder`` (server and clients), or ``None`` if there is none."""
    folder = Path(folder)
    if not (folder / SERVER).exists():
        return None
    global_arrays, history, _ = load_server(folder)
    clients = ClientStates(folder / "clients")
    private = [clients.load(k, len(history)) for k in range(num_clients)]
    return FederatedRun(global_arrays, private, history)
