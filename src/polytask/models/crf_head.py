"""A token head with the transition scores of a linear-chain CRF over its logits."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CRFHead(nn.Module):
    """Token logits (``emissions``: any module ``(B, L, d) -> (B, L, C)``) plus a linear-chain
    CRF's transition scores, a parameter ``(C + 2, C)``: rows ``0..C-1`` score tag ``j``
    after tag ``i``, row ``C`` starting with ``j``, row ``C + 1`` ending with ``j``
    (Lafferty et al. 2001; the BiLSTM-CRF tagger of Huang, Xu, Yu 2015 and Lample et al.
    2016). The transitions start at zero, where the CRF equals a per-token softmax.

    The model returns them in :attr:`polytask.outputs.TaskOutputs.transitions`; the task's
    ``crf`` loss and its decoding read them there (:mod:`polytask.tasks.crf`), so they are
    the task's own parameters like the rest of its head.

    Shapes: ``(B, L, d)`` -> ``(B, L, C)``.
    """

    def __init__(self, emissions: nn.Module, num_tags: int) -> None:
        super().__init__()
        self.emissions = emissions
        self.transitions = nn.Parameter(torch.zeros(num_tags + 2, num_tags))

    def forward(self, x: Tensor) -> Tensor:
        return self.emissions(x)
