"""Building blocks: MLPs, task heads and small trunks used by several architectures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from polytask._registry import unknown_name_message

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (``relu``, ``gelu``, ``tanh``, ``silu``, ``elu``)."""
    if name not in ACTIVATIONS:
        raise KeyError(unknown_name_message("activation", name, list(ACTIVATIONS)))
    return ACTIVATIONS[name]()


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int | None = None,
    act: str = "relu",
    dropout: float = 0.0,
) -> nn.Sequential:
    """``Linear -> act (-> Dropout)`` for each hidden size, then an optional output ``Linear``.

    Shapes: ``(B, in_dim) -> (B, out_dim or hidden[-1] or in_dim)``.
    """
    if in_dim < 1:
        raise ValueError(f"in_dim must be >= 1, got {in_dim}")
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class LeNetTrunk(nn.Module):
    """The shared LeNet-style encoder used for MultiMNIST (Sener & Koltun 2018, appendix).

    ``conv 5x5 (1 -> c1) -> max-pool 2 -> ReLU -> conv 5x5 (c1 -> c2) -> dropout2d -> max-pool 2
    -> ReLU -> Linear (c2 * 4 * 4 -> feature_dim) -> ReLU``.

    Shapes: ``(B, 1, 28, 28) -> (B, feature_dim)``.

    Args:
        channels: ``(c1, c2)`` convolution widths, default ``(10, 20)`` as in the paper.
        feature_dim: size of the shared representation (50 in the paper).
        dropout: drop probability of the dropout2d layer (0.5 as in PyTorch's LeNet example).
    """

    def __init__(
        self, channels: Sequence[int] = (10, 20), feature_dim: int = 50, dropout: float = 0.5
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.drop = nn.Dropout2d(dropout)
        self.fc = nn.Linear(c2 * 16, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.shape[-2:] != (28, 28):
            raise ValueError(f"LeNetTrunk expects 28x28 images, got shape {tuple(x.shape)}")
        x = torch.relu(nn.functional.max_pool2d(self.conv1(x), 2))
        x = torch.relu(nn.functional.max_pool2d(self.drop(self.conv2(x)), 2))
        return torch.relu(self.fc(x.flatten(1)))


def check_heads(heads: Mapping[str, int], model: str) -> tuple[str, ...]:
    """Validate ``{task: output size}`` and return the task names."""
    if not heads:
        raise ValueError(f"{model} needs at least one head: heads={{task: out_dim}}")
    for name, size in heads.items():
        if int(size) < 1:
            raise ValueError(f"head {name!r}: output size must be >= 1, got {size}")
    return tuple(heads)


TowerSpec = Sequence[int] | Callable[[int, int], nn.Module]
"""A task tower: the hidden sizes of an MLP, or a factory ``(in_dim, out_dim) -> module``."""


def towers(
    heads: Mapping[str, int],
    in_dim: int,
    dims: TowerSpec = (32,),
    act: str = "relu",
    dropout: float = 0.0,
) -> nn.ModuleDict:
    """One tower per task, ``in_dim -> heads[task]``: an MLP with hidden sizes ``dims``, or
    ``dims(in_dim, heads[task])`` when ``dims`` is a factory (any module)."""
    if callable(dims):
        return nn.ModuleDict({name: dims(in_dim, int(size)) for name, size in heads.items()})
    return nn.ModuleDict(
        {
            name: mlp(in_dim, dims, int(size), act=act, dropout=dropout)
            for name, size in heads.items()
        }
    )
