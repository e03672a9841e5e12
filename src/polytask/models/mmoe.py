"""MMoE: multi-gate mixture of experts (Ma et al., KDD 2018)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.experts import Experts, Gate, mix
from polytask.models.layers import TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.models.sharing import share
from polytask.outputs import TaskOutputs


@register("mmoe")
class MMoE(MultiTaskModel):
    """Multi-gate mixture of experts: ``y_t = tower_t(sum_e g_t(x)_e f_e(x))`` with
    ``g_t(x) = softmax(W_t x)`` (Ma, Zhao, Yi, Chen, Hong, Chi: "Modeling Task Relationships in
    Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018, eq. 5-6).

    The experts are shared; each task owns its gate and its tower. The gates read the model
    input, or any tensor given as ``gate_inputs=`` to :meth:`forward` (with ``gate_dim=``).
    Each task's gate weights ``(B, E)`` are in ``outputs.extras["gates/<task>"]``.

    The shared ``features`` are the expert outputs ``(B, E, D)`` (plus the gates' input when
    shared parameters produce it, as with a feature embedding), branched per task.

    Shapes: input ``(B, input_dim)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width.
        num_experts: number of experts ``E`` (8).
        expert_dims: hidden sizes of each MLP expert; the last is the expert output ``D``
            (``(64,)``).
        experts: optional expert modules ``(B, input_dim) -> (B, expert_dim)`` instead.
        expert_dim: output width of given expert modules.
        tower_dims: hidden sizes of each task tower (``(32,)``).
            Or a factory ``(in_dim, out_dim) -> module``.
        gate_dim: width of a separate gate input (default: the model input).
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
        gate_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        self.experts = Experts(
            num_experts, input_dim, expert_dims, activation, dropout, experts, expert_dim
        )
        E, D = self.experts.num_experts, self.experts.out_dim
        self.gates = nn.ModuleDict({t: Gate(gate_dim or input_dim, E) for t in self.task_names})
        self.towers = towers(heads, D, tower_dims, activation, dropout)

    def forward(self, inputs: Tensor, gate_inputs: Tensor | None = None) -> TaskOutputs:
        gate_in = inputs if gate_inputs is None else gate_inputs
        views, features = share({"experts": self.experts(inputs), "gate": gate_in}, self.task_names)
        predictions, extras = {}, {}
        for t in self.task_names:
            weights = self.gates[t](views[t]["gate"])
            predictions[t] = self.towers[t](mix(weights, views[t]["experts"]))
            extras[f"gates/{t}"] = weights.detach()
        return TaskOutputs(predictions, features, extras)

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.experts]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.gates[task], self.towers[task]]
