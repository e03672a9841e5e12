"""MOCHA (Smith, Chiang, Sanjabi & Talwalkar, "Federated multi-task learning", NeurIPS
2017): each client its own model, the clients' relationships learned as a task covariance,
the federated form of MTRL (Zhang & Yeung 2010)."""

from __future__ import annotations

from typing import Any

import numpy as np

from polytask.classic.task_covariance import omega_step
from polytask.federated.arrays import Arrays, load_arrays, model_arrays, nested, unnested
from polytask.federated.local_training import ClientSetup, build_model, train_locally
from polytask.federated.protocol import ClientReply, ClientRound, FederatedAlgorithm

OMEGA = "omega"  # the server's task covariance in the message


def client_prefix(client: int) -> str:
    """The names under which client ``client``'s model travels."""
    return f"client{client}/"


def known_clients(arrays: Arrays) -> list[int]:
    """The indices of the clients whose models ``arrays`` hold, in order."""
    return sorted({int(n.split("/")[0][len("client") :]) for n in arrays if n.startswith("client")})


class MOCHA(FederatedAlgorithm):
    """``min_{W, Omega} sum_t F_t(w_t) + (lam / 2) tr(W^T Omega^{-1} W)`` over the
    clients' models ``w_t`` (rows of ``W``, flattened) and the task covariance ``Omega``
    (``>= 0``, unit trace; MOCHA's eq. 2 with MTRL's regulariser). The server keeps every
    client's last model and ``Omega``, computed by the closed-form step MTRL uses
    (:func:`~polytask.classic.task_covariance.omega_step`, shared with
    :class:`~polytask.classic.RelationshipMTL`), and sends both. With the others' models
    fixed, client ``t``'s part of the regulariser is ``(lam c_t / 2) ||w_t - a_t||^2`` +
    const, ``c_t = (Omega^-1)_tt`` and ``a_t = -sum_{s != t} (Omega^-1)_ts w_s / c_t``, so
    the client trains with that proximal term. This is MOCHA's model and ``Omega`` step
    with a primal W step (local SGD, one block per client) in place of its dual coordinate
    ascent, which needs convex losses; the first round has no ``Omega`` yet and trains each
    client alone. Every client receives all models (``T`` times the model size).

    Args:
        lam: strength of the relationship term (>= 0; default 0.001, the value of Liu et
            al. 2022's School runners). Its scale is not MR-MTL's or Ditto's: a client's
            proximal weight is ``lam (Omega^-1)_tt``, and with ``tr Omega = 1`` the diagonal
            of ``Omega^-1`` is at least the number of clients ``m`` (139 on School), so
            ``lam = 0.01`` pulls about as hard as MR-MTL's ``1.4``. On School (200 rounds,
            ``benchmarks/results/federated_lambda.md``) mean test MSE is 0.0217 at 0.01,
            0.081 at 0.1 and 0.18 at 1, against 0.0227 for Local: a large ``lam`` ties every
            school to the others' models.
        eps: keeps ``Omega`` invertible (default 1e-6; see ``omega_step``).
    """

    name = "mocha"

    def __init__(self, lam: float = 0.001, eps: float = 1e-6) -> None:
        if not lam >= 0 or not eps > 0:
            raise ValueError(f"MOCHA needs lam >= 0 and eps > 0, got lam={lam}, eps={eps}")
        self.lam = lam
        self.eps = eps
        self._view: tuple[Arrays, Any] | None = None  # the last round's W and Omega^-1

    def initial_arrays(self, setup: ClientSetup) -> Arrays:
        return {}  # no client model and no Omega before the first round

    def anchor(self, global_arrays: Arrays, client: int) -> tuple[float, Arrays] | None:
        """``(lam c_t, a_t)`` of the client's proximal term, or ``None`` before ``Omega``
        exists or when the client is the only one known."""
        if OMEGA not in global_arrays or self.lam == 0:
            return None
        known, W, inverse, layout = self._round_view(global_arrays)
        if client not in known or len(known) < 2:
            return None
        t = known.index(client)
        c = float(inverse[t, t])
        others = inverse[t] @ W - inverse[t, t] * W[t]  # sum_{s != t} (Omega^-1)_ts w_s
        flat = -others / c
        anchor: Arrays = {}
        for name, (start, shape, dtype) in layout.items():
            size = int(np.prod(shape))
            anchor[name] = flat[start : start + size].reshape(shape).astype(dtype)
        return self.lam * c, anchor

    def _round_view(
        self, global_arrays: Arrays
    ) -> tuple[list[int], np.ndarray, np.ndarray, dict[str, tuple[int, tuple, np.dtype]]]:
        """The known clients, their models as rows of ``W`` (float64), ``Omega^-1`` and the
        layout of one model in a row, computed once per round's arrays (every client of the
        round reads the same): one pass instead of ``T^2`` name scans."""
        if self._view is not None and self._view[0] is global_arrays:
            return self._view[1]
        known = known_clients(global_arrays)
        models = [unnested(global_arrays, client_prefix(k)) for k in known]
        layout: dict[str, tuple[int, tuple, np.dtype]] = {}
        start = 0
        for name in sorted(models[0]):
            value = models[0][name]
            layout[name] = (start, value.shape, value.dtype)
            start += value.size
        W = np.stack([
            np.concatenate([model[n].ravel() for n in sorted(model)]) for model in models
        ]).astype(np.float64)  # fmt: skip
        view = (known, W, np.linalg.inv(global_arrays[OMEGA]), layout)
        self._view = (global_arrays, view)
        return view

    def client_update(
        self, global_arrays: Arrays, private: Arrays, where: ClientRound
    ) -> ClientReply:
        """Train the client's own model with its proximal term; send it under its name."""
        data, setup, seed, client = where.data, where.setup, where.seed, where.client
        if client is None:
            raise ValueError("MOCHA needs each client's index (client=...): its model is its own")
        model = build_model(setup)
        mine = unnested(global_arrays, client_prefix(client))
        if mine:
            load_arrays(model, mine)
        metrics = train_locally(model, setup, data, seed, self.anchor(global_arrays, client))
        arrays = model_arrays(model)
        return ClientReply(nested(arrays, client_prefix(client)), len(data), metrics,
                           private=arrays)  # fmt: skip

    def aggregate(self, replies: list[ClientReply], global_arrays: Arrays) -> Arrays:
        """Every client's newest model (the last known for those absent), and the ``Omega``
        step on them."""
        merged = {n: a for n, a in global_arrays.items() if n != OMEGA}
        for reply in replies:
            merged.update(reply.arrays)
        clients = known_clients(merged)
        if len(clients) > 1:
            models = [unnested(merged, client_prefix(k)) for k in clients]
            W = np.stack([
                np.concatenate([model[n].ravel() for n in sorted(model)]) for model in models
            ]).astype(np.float64)  # fmt: skip
            merged[OMEGA] = omega_step(W, self.eps)
        return merged

    def personal_arrays(self, global_arrays: Arrays, private: Arrays, where: ClientRound) -> Arrays:
        """The client's own model."""
        return private
