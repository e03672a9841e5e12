"""ESMM: entire space multi-task model for CTR and CVR (Ma et al., SIGIR 2018)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polytask.models.base import MultiTaskModel
from polytask.models.layers import mlp
from polytask.models.registry import register
from polytask.models.sharing import share
from polytask.outputs import TaskOutputs


def product_logit(a: Tensor, b: Tensor) -> Tensor:
    """``logit(sigmoid(a) * sigmoid(b))``, computed in log space so that it stays finite
    when both probabilities are close to 0 or 1."""
    log_p = (F.logsigmoid(a) + F.logsigmoid(b)).clamp_max(-1e-30)
    return log_p - torch.log(-torch.expm1(log_p))


@register("esmm")
class ESMM(MultiTaskModel):
    """Entire space multi-task model (Ma, Zhao, Huang, Wang, Hu, Zhu, Gai: "Entire Space
    Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion Rate", SIGIR
    2018, eq. 1-3): over all impressions, ``pCTR = sigmoid(f_ctr(x))`` and
    ``pCTCVR = pCTR * pCVR`` with ``pCVR = sigmoid(f_cvr(x))``; the two tasks are CTR (label:
    click) and CTCVR (label: click and conversion), both trained on the entire space, so the
    CVR tower learns without the sample selection bias of training on clicks only. Give the
    embedded features through ``input_layer=`` (the embedding shared by both towers, as in the
    paper). ``extras["cvr"]`` holds ``pCVR``.

    Predictions are logits (use the ``bce`` loss): ``ctr`` ``(B, 1)`` and ``ctcvr`` ``(B, 1)``
    (:func:`product_logit`). The CTR tower feeds both tasks and is shared; the CVR tower is
    the CTCVR task's. ``features`` are the CTR logit (and the input when shared parameters
    produce it), branched per task.

    Args:
        heads: ``{ctr: 1, ctcvr: 1}`` under the names given by ``ctr``/``ctcvr``.
        input_dim: input width.
        tower_dims: hidden sizes of both towers (``(64, 32)``).
        ctr: name of the CTR task (``"ctr"``).
        ctcvr: name of the CTCVR task (``"ctcvr"``).
        activation: activation of the towers (``relu``).
        dropout: dropout after each hidden layer (0).
    """

    def __init__(
        self,
        heads: Mapping[str, int] | None = None,
        *,
        input_dim: int,
        tower_dims: Sequence[int] = (64, 32),
        ctr: str = "ctr",
        ctcvr: str = "ctcvr",
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        expected = {ctr: 1, ctcvr: 1}
        if heads is not None and dict(heads) != expected:
            raise ValueError(
                f"ESMM has exactly two binary tasks {expected}, got heads={dict(heads)}; "
                "rename them with ctr= and ctcvr="
            )
        self.task_names = (ctr, ctcvr)
        self.ctr_tower = mlp(input_dim, tower_dims, 1, act=activation, dropout=dropout)
        self.cvr_tower = mlp(input_dim, tower_dims, 1, act=activation, dropout=dropout)

    def forward(self, inputs: Tensor) -> TaskOutputs:
        ctr, ctcvr = self.task_names
        views, features = share({"input": inputs, "ctr": self.ctr_tower(inputs)}, self.task_names)
        cvr_logit = self.cvr_tower(views[ctcvr]["input"])
        predictions = {
            ctr: views[ctr]["ctr"],
            ctcvr: product_logit(views[ctcvr]["ctr"], cvr_logit),
        }
        return TaskOutputs(predictions, features, {"cvr": torch.sigmoid(cvr_logit).detach()})

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.ctr_tower]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.cvr_tower] if task == self.task_names[1] else []
