"""Self-auxiliary small towers (Wang, Zhao, Dai et al., WWW 2022; reference text 04)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.layers import mlp
from polytask.models.registry import MODELS, create, register
from polytask.outputs import TaskOutputs, branch, features_required


@register("small_towers")
class SmallTowers(MultiTaskModel):
    """Adds to every task an under-parameterised self-auxiliary tower on the shared
    representation (Wang, Zhao, Dai, Fifty, Lin, Hong, Wei, Chi: "Can Small Heads Help?
    Understanding and Improving Multi-Task Generalization", WWW 2022; reference text 04):
    with shared representation ``h(x)``, task ``t``'s small tower ``f_t^a(h(x); theta_t^a)``
    predicts the same label, and the training loss becomes
    ``sum_t w_t (L_t(theta_sh, theta_t) + gamma L_t(theta_sh, theta_t^a))``.

    The small towers' predictions are returned as
    :attr:`~polytask.outputs.TaskOutputs.companions` with weight ``gamma``, so
    ``TaskSet.losses`` adds ``gamma L_t^a`` to task ``t``'s loss and every balancer weighs
    the pair with one ``w_t``, as in the formula. They run in training mode only: in eval mode
    the outputs are exactly the wrapped model's, and :meth:`inference_model` returns the
    wrapped model itself (no small-tower parameters or compute at inference).

    The wrapped model must expose its shared representation (``outputs.features``, one
    tensor or branches of it), which every task reads (hard sharing, MMoE-style gated experts
    qualify; the reference text notes that PLE does not). Each small tower reads its task's
    branch, flattened.

    Args:
        model: the multi-task model to wrap, or the registered name of one, built with
            ``model_options`` plus ``heads`` and ``input_dim`` (as from a configuration).
        model_options: options of a model given by name.
        heads: ``{task: output size}`` for a model given by name.
        input_dim: input width for a model given by name (when it takes one).
        gamma: weight of every small tower's loss (0.1).
        dims: hidden sizes of a small tower (``()``: linear, the smallest tower).
        feature_dim: width of one task's flattened ``features`` (default: the wrapped
            model's ``feature_dim`` attribute, as on :class:`SharedBottom`; for MMoE it is
            ``num_experts * expert_dim``).
        activation: activation of hidden layers (``relu``).
    """

    def __init__(
        self,
        model: MultiTaskModel | str = "shared_bottom",
        *,
        model_options: Mapping[str, Any] | None = None,
        heads: Mapping[str, int] | None = None,
        input_dim: int | None = None,
        gamma: float = 0.1,
        dims: Sequence[int] = (),
        feature_dim: int | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if isinstance(model, str):
            model = _build(model, model_options or {}, heads, input_dim)
        self.model = model
        self.task_names = model.task_names
        self.gamma = float(gamma)
        sizes = _head_sizes(model)
        feature_dim = feature_dim or getattr(model, "feature_dim", None)
        if not isinstance(feature_dim, int):
            raise ValueError(
                f"give feature_dim= (the flattened width of one task's features): "
                f"{type(model).__name__} has no feature_dim attribute"
            )
        self.small = nn.ModuleDict(
            {t: mlp(feature_dim, dims, sizes[t], act=activation) for t in self.task_names}
        )

    def forward(self, inputs: Any) -> TaskOutputs:
        if not self.training:
            return self.model(inputs)
        with features_required():  # the small towers read them, whatever the balancer
            out = self.model(inputs)
        if out.features is None:
            raise ValueError(
                "SmallTowers needs the wrapped model to return its shared features "
                "(outputs.features); this model returns none"
            )
        features = out.features
        views = branch(features, self.task_names) if isinstance(features, Tensor) else features
        companions = dict(out.companions)
        for t in self.task_names:
            extra = self.small[t](views[t].flatten(1))
            companions[t] = [*companions.get(t, []), (extra, self.gamma)]
        return TaskOutputs(out.predictions, views, out.extras, companions)

    def inference_model(self) -> MultiTaskModel:
        """The wrapped model alone, for deployment (the small towers dropped)."""
        return self.model

    def penalty(self) -> Tensor | None:
        return self.model.penalty()

    def shared_modules(self) -> Sequence[nn.Module]:
        return self.model.shared_modules()

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [*self.model.task_modules(task), self.small[task]]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.model.shared_parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.model.task_parameters(task)
        yield from self.small[task].parameters()


def _build(
    name: str, options: Mapping[str, Any], heads: Mapping[str, int] | None, input_dim: int | None
) -> MultiTaskModel:
    if heads is None:
        raise ValueError("a wrapped model given by name needs heads=")
    options = {"heads": heads, **options}
    if input_dim is not None and "input_dim" in MODELS.get(name).options():
        options.setdefault("input_dim", input_dim)
    return create(name, **options)


def _head_sizes(model: MultiTaskModel) -> Mapping[str, int]:
    """Each task's output width, from the last ``Linear`` of its task modules."""
    sizes = {}
    for task in model.task_names:
        linears = [
            m for mod in model.task_modules(task) for m in mod.modules() if isinstance(m, nn.Linear)
        ]
        if not linears:
            raise ValueError(
                f"cannot find the output layer of task {task!r} to size its small tower"
            )
        sizes[task] = linears[-1].out_features
    return sizes
