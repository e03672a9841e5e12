"""OMoE: one-gate mixture of experts (the baseline of Ma et al., KDD 2018)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.experts import Experts, Gate, mix
from polytask.models.layers import TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.outputs import TaskOutputs, branch


@register("omoe")
class OMoE(MultiTaskModel):
    """One-gate mixture of experts: ``y_t = tower_t(sum_e g(x)_e f_e(x))`` with a single
    ``g(x) = softmax(W x)`` shared by all tasks (Ma et al., KDD 2018, eq. 4: the "OMoE"
    baseline of their section 4). Experts and gate are shared, so the mixture is a shared
    bottom; each task owns its tower. The gate weights ``(B, E)`` are in
    ``outputs.extras["gates/shared"]``.

    Shapes: input ``(B, input_dim)`` -> ``predictions[t]`` ``(B, heads[t])``; ``features``
    ``(B, D)``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width.
        num_experts: number of experts ``E`` (8).
        expert_dims: hidden sizes of each MLP expert; the last is its output ``D`` (``(64,)``).
        experts: optional expert modules ``(B, input_dim) -> (B, expert_dim)`` instead.
        expert_dim: output width of given expert modules.
        tower_dims: hidden sizes of each task tower (``(32,)``).
            Or a factory ``(in_dim, out_dim) -> module``.
        activation: activation in experts and towers (``relu``).
        dropout: dropout after each hidden layer (0).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int,
        num_experts: int = 8,
        expert_dims: Sequence[int] = (64,),
        experts: Sequence[nn.Module] | None = None,
        expert_dim: int | None = None,
        tower_dims: TowerSpec = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        self.experts = Experts(
            num_experts, input_dim, expert_dims, activation, dropout, experts, expert_dim
        )
        self.gate = Gate(input_dim, self.experts.num_experts)
        self.towers = towers(heads, self.experts.out_dim, tower_dims, activation, dropout)

    def forward(self, inputs: Tensor) -> TaskOutputs:
        weights = self.gate(inputs)
        branches = branch(mix(weights, self.experts(inputs)), self.task_names)
        predictions = {t: self.towers[t](branches[t]) for t in self.task_names}
        return TaskOutputs(predictions, branches, {"gates/shared": weights.detach()})

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.experts, self.gate]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.towers[task]]
