"""A bidirectional LSTM encoder with task heads: the encoder of the Joint BiLSTM (Hakkani-Tür
et al., Interspeech 2016) and Slot-Gated (Goo et al., NAACL 2018) baselines for joint intent
detection and slot filling, under the same heads as :class:`~polytask.models.TransformerMTL`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from polytask.models.layers import TowerSpec
from polytask.models.registry import register
from polytask.models.transformer import (
    HeadType,
    SequenceEncoder,
    TransformerMTL,
    input_embedding,
)


class BiLSTMEncoder(SequenceEncoder):
    """Token embeddings (or a linear map of real-valued features) and a ``num_layers``
    bidirectional LSTM; each position's output is the forward and backward states side by
    side. Sequences are packed by their real length (``mask``), so padding changes no output
    at a real position and the backward direction starts at each sequence's own last token.

    Shapes: ``tokens`` ``(B, L)`` (or features ``(B, L, input_dim)``), ``mask`` ``(B, L)``
    -> ``(B, L, 2 * hidden)``; padded positions are zeros.
    """

    def __init__(self, *, vocab_size: int | None, input_dim: int | None, embed_dim: int,
                 hidden: int, num_layers: int, dropout: float, pad_id: int) -> None:  # fmt: skip
        super().__init__()
        self.embed = input_embedding(vocab_size, input_dim, embed_dim, pad_id)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)  # fmt: skip

    def forward(self, tokens: Tensor, segments: Tensor | None, mask: Tensor) -> Tensor:
        embedded = self.dropout(self.embed(tokens))
        lengths = mask.sum(1).clamp_min(1).cpu()  # pack_padded_sequence reads them on the host
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        return self.dropout(hidden)


@register("bilstm")
class BiLSTMMTL(TransformerMTL):
    """A shared bidirectional LSTM encoder (:class:`BiLSTMEncoder`) with task heads of the
    types :class:`~polytask.models.TransformerMTL` offers: ``sequence`` (intent: the mean of
    the real positions' states by default, or position 0's), ``token`` (slots: one label per
    position), ``crf`` (a token head with a linear-chain CRF: the BiLSTM-CRF of Huang et al.
    2015), ``pair``, ``regression``, ``ranking``. The Joint BiLSTM / Slot-Gated encoder
    of joint NLU (Hakkani-Tür et al. 2016; Goo et al. 2018), trained from scratch.

    Args:
        heads: ``{task: output size}``.
        head_types: ``{task: type}`` (default ``sequence``).
        vocab_size: token vocabulary (token-id inputs); or ``input_dim`` for features.
        embed_dim: token embedding width (64).
        hidden: LSTM states per direction (64; the features are ``2 * hidden`` wide).
        num_layers: stacked BiLSTM layers (1).
        dropout: on the embeddings, between layers and on the outputs (0.1).
        pad_id: padding token id (0).
        pooling: ``mean`` (default) or ``cls`` for sequence-level heads.
        head_dims: hidden sizes of every head (``()``: linear).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        head_types: Mapping[str, HeadType] | None = None,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        embed_dim: int = 64,
        hidden: int = 64,
        num_layers: int = 1,
        dropout: float = 0.1,
        pad_id: int = 0,
        pooling: Literal["cls", "mean"] = "mean",
        head_dims: TowerSpec = (),
    ) -> None:
        encoder = BiLSTMEncoder(vocab_size=vocab_size, input_dim=input_dim, embed_dim=embed_dim,
                                hidden=hidden, num_layers=num_layers, dropout=dropout,
                                pad_id=pad_id)  # fmt: skip
        super().__init__(heads, head_types=head_types, pad_id=pad_id, pooling=pooling,
                         head_dims=head_dims, encoder=encoder, hidden_size=2 * hidden)  # fmt: skip
