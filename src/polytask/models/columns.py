"""Per-task columns for soft parameter sharing (cross-stitch, sluice): one copy of a layer
sequence per task, built from sizes or copied from given modules."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from polytask.models.layers import activation


def build_layers(
    layers: Sequence[nn.Module] | None,
    input_dim: int | None,
    dims: Sequence[int],
    act: str,
) -> list[nn.Module]:
    """The column template: given modules, or ``Linear -> act`` per size in ``dims``."""
    if layers is not None:
        if not layers:
            raise ValueError("layers must hold at least one module")
        return list(layers)
    if input_dim is None:
        raise ValueError("give input_dim= (with dims=) or layers= (a sequence of modules)")
    if not dims:
        raise ValueError("dims must name at least one layer size")
    widths = [input_dim, *dims]
    return [nn.Sequential(nn.Linear(a, b), activation(act)) for a, b in itertools.pairwise(widths)]


class Columns(nn.Module):
    """``T`` independent copies of a layer sequence; ``layer(k, xs)`` applies layer ``k`` of
    every column to its own input and stacks the results ``(T, B, ...)``."""

    def __init__(self, template: Sequence[nn.Module], num_columns: int) -> None:
        super().__init__()
        self.columns = nn.ModuleList(
            nn.ModuleList(copy.deepcopy(m) for m in template) for _ in range(num_columns)
        )
        for column in self.columns:
            for module in column.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()  # independent initialisation per column
        self.depth = len(template)

    def layer(self, k: int, xs: Sequence[Tensor]) -> Tensor:
        columns = cast(list[nn.ModuleList], list(self.columns))
        return torch.stack([column[k](x) for column, x in zip(columns, xs, strict=True)])


def mix_rows(rows: Sequence[Tensor], stacked: Tensor) -> list[Tensor]:
    """``out_i = sum_j rows[i][j] * stacked[j]`` for stacked ``(N, B, ...)``."""
    flat = stacked.reshape(stacked.shape[0], -1)
    return [(row @ flat).reshape(stacked.shape[1:]) for row in rows]


class StitchUnits(nn.Module):
    """One ``size x size`` mixing matrix per layer, each row its own parameter (so that rows
    can belong to different tasks): the identity, or ``self_weight`` on the diagonal and the
    rest spread evenly (Misra et al. 2016, section 3.2, use 0.9/0.1 for two tasks)."""

    def __init__(self, layers: int, size: int, identity: bool, self_weight: float) -> None:
        super().__init__()
        off = 0.0 if size == 1 else (1.0 - self_weight) / (size - 1)
        self.units = nn.ModuleList()
        for _ in range(layers):
            rows = nn.ParameterList()
            for i in range(size):
                row = torch.zeros(size) if identity else torch.full((size,), off)
                row[i] = 1.0 if identity or size == 1 else self_weight
                rows.append(nn.Parameter(row))
            self.units.append(rows)

    def rows(self, layer: int) -> list[nn.Parameter]:
        """The rows of layer ``layer``'s matrix (negative indices count from the top)."""
        return list(cast(nn.ParameterList, self.units[layer]))

    def lower(self) -> list[nn.Module]:
        """Every unit but the top one (as modules, for the shared parameter group)."""
        return list(self.units)[:-1]
