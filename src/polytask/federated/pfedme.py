"""pFedMe (Dinh, Tran & Nguyen, "Personalized federated learning with Moreau envelopes",
NeurIPS 2020)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from polytask.federated.arrays import Arrays, load_arrays, model_arrays, weighted_average
from polytask.federated.local_training import build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm


class PFedMe(FederatedAlgorithm):
    """Each client's personal model ``theta`` minimises ``f_i(theta) + (lam / 2) ||theta -
    w_i||^2`` (the Moreau envelope of its loss at its local copy ``w_i`` of the global
    model). A client round (Algorithm 1), for each of the local steps: draw a batch, solve
    the inner problem approximately by ``inner_steps`` gradient steps from ``w_i`` on that
    batch, then move ``w_i <- w_i - lr lam (w_i - theta)``; it sends ``w_i`` and keeps
    ``theta``. The server mixes: ``w <- (1 - beta) w + beta * mean_i w_i`` (example-weighted;
    ``beta = 1`` is FedAvg's average).

    Args:
        lam: strength of the Moreau envelope (> 0; the paper uses 15).
        inner_steps: gradient steps on the inner problem (>= 0; the paper's ``K`` = 5).
        beta: the server's mixing (in (0, 1]; the paper uses 1 or 2; values above 1 are
            refused here: they extrapolate).
    """

    name = "pfedme"

    def __init__(self, lam: float = 15.0, inner_steps: int = 5, beta: float = 1.0) -> None:
        if not lam > 0 or inner_steps < 0 or not 0 < beta <= 1:
            raise ValueError(
                f"pFedMe needs lam > 0, inner_steps >= 0 and 0 < beta <= 1; got lam={lam}, "
                f"inner_steps={inner_steps}, beta={beta}"
            )
        self.lam = lam
        self.inner_steps = inner_steps
        self.beta = beta

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """The local rounds of inner solves and Moreau steps; send ``w_i``, keep ``theta``."""
        data, setup, seed = where.data, where.setup, where.seed
        local = {n: a.astype(np.float64) for n, a in global_arrays.items()}
        inner_setup = dataclasses.replace(
            setup, local=dataclasses.replace(setup.local, batch_size=len(data))
        )  # the inner problem uses all of its batch at every step
        generator = torch.Generator().manual_seed(seed)
        theta_model = build_model(setup)
        theta: Arrays = dict(global_arrays)
        metrics: dict[str, float] = {}
        for step in range(setup.local.steps):
            size = min(setup.local.batch_size, len(data))
            batch = data.subset(torch.randperm(len(data), generator=generator)[:size])
            anchor = {n: a.astype(global_arrays[n].dtype) for n, a in local.items()}
            load_arrays(theta_model, anchor)
            metrics = train_locally(
                theta_model, inner_setup, batch, seed + step,
                proximal=(self.lam, anchor), steps=self.inner_steps,
            )  # fmt: skip
            theta = model_arrays(theta_model)
            rate = setup.local.lr * self.lam
            local = {n: w - rate * (w - theta[n].astype(np.float64)) for n, w in local.items()}
        sent = {n: a.astype(global_arrays[n].dtype) for n, a in local.items()}
        return ClientReply(sent, len(data), metrics, private=theta)

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """``(1 - beta) w + beta * (example-weighted mean of the clients' w_i)``."""
        if not replies:
            return global_arrays
        mean = weighted_average([(r.arrays, float(r.num_examples)) for r in replies])
        return {
            n: ((1 - self.beta) * global_arrays[n] + self.beta * mean[n]).astype(mean[n].dtype)
            for n in mean
        }

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The personal model ``theta`` of the last inner solve."""
        return private or global_arrays
