"""Model parameters as named numpy arrays: what clients and the server exchange (Flower's
``ArrayRecord`` holds the same), and the weighted average FedAvg-style servers take."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

Arrays = dict[str, np.ndarray]


def model_arrays(model: nn.Module, names: Iterable[str] | None = None) -> Arrays:
    """``{name: array}`` copies of ``model``'s parameters (all, or ``names``), on the host."""
    wanted = None if names is None else set(names)
    return {
        name: p.detach().cpu().numpy().copy()
        for name, p in model.named_parameters()
        if wanted is None or name in wanted
    }


def load_arrays(model: nn.Module, arrays: Arrays) -> None:
    """Copy ``arrays`` into the parameters of the same names (on the model's device); a
    name the model does not have, or a shape that differs, is an error naming it."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in arrays.items():
            if name not in parameters:
                raise KeyError(f"the model has no parameter {name!r} (sent by the server)")
            target = parameters[name]
            if tuple(target.shape) != value.shape:
                raise ValueError(
                    f"parameter {name!r}: the model's shape is {tuple(target.shape)}, the "
                    f"array's {value.shape}"
                )
            target.copy_(torch.as_tensor(value, dtype=target.dtype, device=target.device))


def nested(arrays: Arrays, prefix: str) -> Arrays:
    """``arrays`` under ``prefix`` (``"component0/"``, ``"client3/"``): several models in one
    message."""
    return {prefix + name: value for name, value in arrays.items()}


def unnested(arrays: Arrays, prefix: str) -> Arrays:
    """The arrays named under ``prefix``, with the prefix taken off (:func:`nested`'s
    inverse)."""
    return {n[len(prefix) :]: value for n, value in arrays.items() if n.startswith(prefix)}


def weighted_average(parts: Sequence[tuple[Arrays, float]]) -> Arrays:
    """``sum_k w_k a_k / sum_k w_k`` per name over the parts that hold it (FedAvg's server
    step with ``w_k`` the clients' example counts; McMahan et al. 2017, Algorithm 1)."""
    totals: dict[str, np.ndarray] = {}
    weights: dict[str, float] = {}
    dtypes: dict[str, np.dtype] = {}
    for arrays, weight in parts:
        if not weight > 0:
            raise ValueError(f"an aggregation weight must be > 0, got {weight}")
        for name, value in arrays.items():
            totals[name] = totals.get(name, 0.0) + weight * value.astype(np.float64)
            weights[name] = weights.get(name, 0.0) + weight
            dtypes.setdefault(name, value.dtype)
    return {name: (total / weights[name]).astype(dtypes[name]) for name, total in totals.items()}


def shared_names(model: nn.Module) -> list[str]:
    """The names of the parameters every task shares (``MultiTaskModel.shared_parameters``);
    the rest are the task heads (towers)."""
    shared = getattr(model, "shared_parameters", None)
    if shared is None:
        raise TypeError(
            f"{type(model).__name__} does not say which parameters are shared: use a polytask "
            "model (polytask.models.create) or give it a shared_parameters() method"
        )
    ids = {id(p) for p in shared()}
    return [name for name, p in model.named_parameters() if id(p) in ids]
