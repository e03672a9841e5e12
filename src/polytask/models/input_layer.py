"""Any architecture behind an input layer (a feature embedding, a shared encoder)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.features import FeatureEmbedding, FeatureSchema
from polytask.outputs import TaskOutputs


def build_input_layer(spec: nn.Module | FeatureSchema | Mapping[str, Any]) -> nn.Module:
    """An input layer from a module (with an ``output_dim`` attribute), a
    :class:`FeatureSchema`, or a schema's configuration ``{"sparse": [...], ...}``."""
    if isinstance(spec, nn.Module):
        if not isinstance(getattr(spec, "output_dim", None), int):
            raise ValueError("an input layer module needs an int output_dim attribute")
        return spec
    return FeatureEmbedding(spec)


class WithInputLayer(MultiTaskModel):
    """``model(input_layer(x))``: the input layer's parameters are shared by every task;
    everything else (task groups, features, extras, penalty) is the wrapped model's.

    Build it with ``polytask.models.create(name, input_layer=..., ...)``, which sizes the
    model's ``input_dim`` from the layer's ``output_dim``.

    Shapes: whatever the input layer takes (``{feature: tensor}`` for a feature schema) ->
    the wrapped model's outputs.
    """

    def __init__(self, model: MultiTaskModel, input_layer: nn.Module) -> None:
        super().__init__()
        self.input_layer, self.model = input_layer, model
        self.task_names = model.task_names

    def forward(self, inputs: Any) -> TaskOutputs:
        out: TaskOutputs = self.model(self.input_layer(inputs))
        return out

    def penalty(self) -> Tensor | None:
        return self.model.penalty()

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.input_layer, *self.model.shared_modules()]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return self.model.task_modules(task)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.model.task_parameters(task)
