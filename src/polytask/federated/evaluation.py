"""Each client's model scored on its own data, and the distribution over clients: a
personalised method is judged by how its worst clients fare, not only by the mean (Marfoq
et al. 2021 report the bottom decile)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import Arrays
from polytask.federated.local_training import ClientSetup
from polytask.federated.protocol import ClientRound, FederatedAlgorithm
from polytask.federated.rounds import FederatedRun


@dataclass
class ClientScores:
    """``losses[k][task]``: client ``k``'s mean loss of each task on its evaluation rows;
    ``examples[k]``: its row count."""

    losses: list[dict[str, float]]
    examples: list[int]

    def summary(self, task: str) -> dict[str, float]:
        """The example-weighted mean over clients, the plain mean, and the 90th percentile
        of the loss (the bottom decile of clients: the 10% worst off are above it)."""
        values = np.array([scores[task] for scores in self.losses])
        weights = np.array(self.examples, dtype=np.float64)
        return {
            "weighted_mean": float(values @ weights / weights.sum()),
            "mean": float(values.mean()),
            "bottom_decile": float(np.percentile(values, 90)),
        }


def client_losses(
    algorithm: FederatedAlgorithm,
    global_arrays: Arrays,
    private: Arrays,
    where: ClientRound,
    held_out: TensorTaskDataset,
) -> dict[str, float]:
    """Client ``where.client``'s mean loss of each task on its ``held_out`` rows, from its
    predictions (:meth:`FederatedAlgorithm.personal_predictions`, which may fine-tune on
    ``where.data``)."""
    predictions = algorithm.personal_predictions(global_arrays, private, where, held_out.inputs)
    with torch.no_grad():
        task_losses = where.setup.tasks.losses(predictions, held_out.targets, held_out.masks)
    return {task: float(value) for task, value in task_losses.items()}


def evaluation_round(setup: ClientSetup, train: TensorTaskDataset, client: int) -> ClientRound:
    """Where client ``client`` is evaluated: its training rows, seed ``setup.seed +
    client`` (for a fine-tuning's draws; the same in every engine)."""
    return ClientRound(train, setup, setup.seed + client, client)


def evaluate_clients(
    algorithm: FederatedAlgorithm,
    run: FederatedRun,
    train: Sequence[TensorTaskDataset],
    evaluate: Sequence[TensorTaskDataset],
    setup: ClientSetup,
) -> ClientScores:
    """Score each client's predictions (:func:`client_losses`: its personal model, which
    may be fine-tuned on its ``train`` rows, or a mixture) on its ``evaluate`` rows."""
    losses, examples = [], []
    for k, (rows, held_out) in enumerate(zip(train, evaluate, strict=True)):
        where = evaluation_round(setup, rows, k)
        losses.append(client_losses(algorithm, run.global_arrays, run.private[k], where, held_out))
        examples.append(len(held_out))
    return ClientScores(losses, examples)
