"""Mixture-of-experts building blocks: a batched group of experts and softmax gates.

A group of ``E`` MLP experts with the same sizes is held as stacked weights ``(in, E, out)``
per layer and evaluated with one matrix product per layer for all experts, instead of ``E``
small networks called one after another.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from polytask.models.layers import activation


class Experts(nn.Module):
    """``E`` experts, each an MLP ``in_dim -> dims``, or ``E`` given modules.

    Shapes: ``(B, in_dim) -> (B, E, dims[-1])``.

    Args:
        num_experts: ``E`` (ignored when ``modules`` is given).
        in_dim: input width.
        dims: hidden sizes of each expert; the last is the expert's output size.
        act: activation after every layer (``relu``).
        dropout: dropout after every layer (0).
        modules: optional expert modules ``(B, in_dim) -> (B, out_dim)`` (any network, for
            example convolutional experts on images); then ``out_dim`` must be given.
        out_dim: output width of given modules.
    """

    def __init__(
        self,
        num_experts: int,
        in_dim: int,
        dims: Sequence[int] = (64,),
        act: str = "relu",
        dropout: float = 0.0,
        modules: Sequence[nn.Module] | None = None,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.given = nn.ModuleList(modules or [])
        if modules:
            if out_dim is None:
                raise ValueError("expert modules need out_dim= (their output width)")
            self.num_experts, self.out_dim = len(modules), int(out_dim)
            self.weights = nn.ParameterList()
            self.biases = nn.ParameterList()
            return
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        if not dims:
            raise ValueError("expert dims must name at least one layer size")
        self.num_experts, self.out_dim = int(num_experts), int(dims[-1])
        self.act = activation(act)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        widths = [in_dim, *dims]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(widths):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            # (in, E, out): the first layer is then one (B, in) x (in, E*out) product on a
            # view of the weight, with no copy.
            self.weights.append(nn.Parameter(torch.empty(fan_in, num_experts, fan_out)))
            self.biases.append(nn.Parameter(torch.empty(num_experts, fan_out)))
            nn.init.uniform_(self.weights[-1], -bound, bound)
            nn.init.uniform_(self.biases[-1], -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.given):
            return torch.stack([m(x) for m in self.given], dim=1)
        E = self.num_experts
        w0, b0 = self.weights[0], self.biases[0]
        # First layer: one (B, in) x (in, E*out) product for every expert at once.
        h = (x @ w0.reshape(w0.shape[0], -1)).view(x.shape[0], E, -1) + b0
        h = self.dropout(self.act(h))
        for w, b in zip(list(self.weights)[1:], list(self.biases)[1:], strict=True):
            h = torch.einsum("bei,ieo->beo", h, w) + b
            h = self.dropout(self.act(h))
        return h


class Gate(nn.Module):
    """A softmax gate: ``softmax(W x + b)`` over ``num_experts`` (Ma et al., KDD 2018).

    Shapes: ``(B, in_dim) -> (B, num_experts)``; each row sums to one.
    """

    def __init__(self, in_dim: int, num_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, num_experts)

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.linear(x), dim=-1)


def mix(weights: Tensor, experts: Tensor) -> Tensor:
    """Gate-weighted sum of expert outputs: ``(B, E)`` and ``(B, E, D)`` -> ``(B, D)``."""
    return torch.einsum("be,bed->bd", weights, experts)
