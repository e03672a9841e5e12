"""FedEM (Marfoq, Neglia, Bellet, Kameni & Vidal, "Federated multi-task learning under a
mixture of distributions", NeurIPS 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import (
    Arrays,
    load_arrays,
    model_arrays,
    nested,
    unnested,
    weighted_average,
)
from polytask.federated.local_training import ClientSetup, build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


def component_arrays(arrays: Arrays, m: int) -> Arrays:
    """Component ``m``'s arrays (sent as ``component{m}/{name}`` in one message)."""
    return unnested(arrays, f"component{m}/")


def responsibilities(log_mixture: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """The E-step: ``q_i(m) = pi_m exp(-l_im) / sum_m' pi_m' exp(-l_im')`` for the rows'
    losses ``l`` ``(n, M)`` under each component (their negative log-likelihoods) and the
    mixture's log-weights ``(M,)``; ``(n, M)``, each row summing to 1 (Algorithm 1,
    eq. 7)."""
    return torch.softmax(log_mixture - losses, dim=1)


class FedEM(FederatedAlgorithm):
    """Each client's data are a mixture of ``components`` shared distributions: ``M``
    models ``h_m`` are learned by all clients together, each client keeps its own mixture
    weights ``pi_t`` and predicts with ``sum_m pi_tm h_m``. A round on a client: the E-step
    (:func:`responsibilities` of its rows under each component), the M-step for the weights
    (``pi_tm = mean_i q_i(m)``), then local training of each component on the rows weighted
    by ``q_i(m)`` (``TaskSet.losses(row_weights=...)``, any balancer); it sends all ``M``
    components in one message. The server averages each component over the clients by
    example counts (Algorithm 1). A row's loss is the sum of its tasks' losses: for
    ``mse`` that is the Gaussian negative log-likelihood up to constants and scale.

    Args:
        components: ``M`` (>= 1; the paper uses 3).
    """

    name = "fedem"

    def __init__(self, components: int = 3) -> None:
        if components < 1:
            raise ValueError(f"components must be >= 1, got {components}")
        self.components = components

    def initial_arrays(self, setup: ClientSetup) -> Arrays:
        """``M`` models, component ``m`` seeded by ``setup.seed + m`` (distinct starts)."""
        arrays: Arrays = {}
        for m in range(self.components):
            arrays.update(nested(model_arrays(build_model(setup, m)), f"component{m}/"))
        return arrays

    def _models(self, arrays: Arrays, setup: ClientSetup) -> list[torch.nn.Module]:
        models = []
        for m in range(self.components):
            model = build_model(setup)
            load_arrays(model, component_arrays(arrays, m))
            models.append(model)
        return models

    def _row_losses(
        self, models: list[torch.nn.Module], data: TensorTaskDataset, setup: ClientSetup
    ) -> torch.Tensor:
        """``(n, M)``: each row's summed task loss under each component."""
        columns = []
        with torch.no_grad():
            for model in models:
                model.eval()
                values, _ = setup.tasks.row_losses(model(data.inputs), data.targets, data.masks)
                columns.append(values.sum(dim=1))
        losses = torch.stack(columns, dim=1)
        if not bool(torch.isfinite(losses).all()):
            raise FloatingPointError(
                "FedEM's E-step met a non-finite row loss: check the client's data, or lower "
                "the learning rate"
            )
        return losses

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """E-step, mixture weights, weighted training of every component; send them all."""
        data, setup, seed = where.data, where.setup, where.seed
        models = self._models(global_arrays, setup)
        mixture = torch.as_tensor(
            private.get("mixture", np.full(self.components, 1.0 / self.components))
        )
        q = responsibilities(torch.log(mixture), self._row_losses(models, data, setup))
        mixture = q.mean(dim=0)
        arrays: Arrays = {}
        metrics: dict[str, float] = {}
        for m, model in enumerate(models):
            result = train_locally(model, setup, data, seed + m, row_weights=q[:, m])
            arrays.update(nested(model_arrays(model), f"component{m}/"))
            metrics.update({f"component{m}/{k}": v for k, v in result.items()})
        private = {"mixture": mixture.numpy().astype(np.float64)}
        return ClientReply(arrays, len(data), metrics, private=private)

    def personal_predictions(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound, inputs: Any
    ) -> Mapping[str, torch.Tensor]:
        """The mixture's prediction with the client's weights ``pi``: for a regression task
        ``sum_m pi_m h_m(x)``; for a classification task the mixture of the components'
        probabilities, returned as logits (``logit`` / ``log``) so that losses read it."""
        setup = where.setup
        weights = torch.as_tensor(
            private.get("mixture", np.full(self.components, 1.0 / self.components)),
            dtype=torch.float32,
        )
        outputs = []
        with torch.no_grad():
            for model in self._models(global_arrays, setup):
                model.eval()
                outputs.append(model(inputs).predictions)
        mixed: dict[str, torch.Tensor] = {}
        for task in setup.tasks:
            stacked = torch.stack([out[task.name] for out in outputs])  # (M, B, ...)
            w = weights.reshape(-1, *[1] * (stacked.dim() - 1)).to(stacked)
            if task.kind == "regression":
                mixed[task.name] = (w * stacked).sum(0)
            elif task.kind == "binary":
                p = (w * torch.sigmoid(stacked)).sum(0).clamp(1e-7, 1 - 1e-7)
                mixed[task.name] = torch.logit(p)
            else:
                mixed[task.name] = torch.log((w * torch.softmax(stacked, dim=-1)).sum(0))
        return mixed

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """Each component's example-weighted mean over the clients."""
        if not replies:
            return global_arrays
        return weighted_average([(r.arrays, float(r.num_examples)) for r in replies])
