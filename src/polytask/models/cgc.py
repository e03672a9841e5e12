"""CGC: customized gate control, one extraction level of PLE (Tang et al., RecSys 2020)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polytask.models.layers import TowerSpec
from polytask.models.ple import PLE, ExpertFactory
from polytask.models.registry import register


@register("cgc")
class CGC(PLE):
    """Customized gate control (Tang, Liu, Zhao, Gong, RecSys 2020, section 4.2, eq. 2-4):
    per-task experts ``E_t`` and shared experts ``E_s``; task ``t``'s gate mixes
    ``[E_t(x), E_s(x)]`` with weights ``softmax(W_t x)``; ``y_t = tower_t(mix)``. It is
    :class:`~polytask.models.ple.PLE` with one level: task ``t`` owns its experts, gate and
    tower; the shared experts are shared. Gate weights are in
    ``outputs.extras["gates/<task>"]``.

    Shapes: input ``(B, input_dim)`` -> ``predictions[t]`` ``(B, heads[t])``.

    Args:
        heads: ``{task: output size}``.
        input_dim: input width.
        task_experts: experts per task (1).
        shared_experts: shared experts (1).
        expert_dims: hidden sizes of each MLP expert; the last is its output (``(64,)``).
        experts: a factory ``in_dim -> module`` building each expert instead.
        expert_dim: output width of the experts a factory builds.
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
        task_experts: int = 1,
        shared_experts: int = 1,
        expert_dims: Sequence[int] = (64,),
        experts: ExpertFactory | None = None,
        expert_dim: int | None = None,
        tower_dims: TowerSpec = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            heads,
            input_dim=input_dim,
            levels=1,
            task_experts=task_experts,
            shared_experts=shared_experts,
            expert_dims=expert_dims,
            experts=experts,
            expert_dim=expert_dim,
            tower_dims=tower_dims,
            activation=activation,
            dropout=dropout,
        )
