"""A transformer encoder with task heads, in the style of MT-DNN (Liu, He, Chen, Gao; ACL 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from polytask.models.base import MultiTaskModel
from polytask.models.crf_head import CRFHead
from polytask.models.layers import TowerSpec, check_heads, towers
from polytask.models.registry import register
from polytask.outputs import TaskOutputs, branch

HeadType = Literal["sequence", "pair", "regression", "ranking", "token", "crf"]
HEAD_TYPES: tuple[str, ...] = ("sequence", "pair", "regression", "ranking", "token", "crf")
TOKEN_HEADS = ("token", "crf")


def token_inputs(
    inputs: Tensor | Mapping[str, Tensor], pad_id: int
) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(tokens, segments, mask)`` from a token tensor ``(B, L)`` (ids; ``pad_id`` is
    padding), a feature tensor ``(B, L, F)`` or ``{"tokens": ..., "segments": ...,
    "mask": ...}`` (``mask`` True at real positions). Position 0 is never masked, so a
    sequence is never all padding."""
    if isinstance(inputs, Mapping):
        if "tokens" not in inputs:
            raise KeyError(f"transformer inputs need a 'tokens' entry, got {sorted(inputs)}")
        tokens, segments, mask = inputs["tokens"], inputs.get("segments"), inputs.get("mask")
    else:
        tokens, segments, mask = inputs, None, None
    if mask is None:
        if tokens.is_floating_point():
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        else:
            mask = tokens != pad_id
    mask = mask.to(torch.bool).clone()
    mask[:, 0] = True
    return tokens, segments, mask


def input_embedding(
    vocab_size: int | None, input_dim: int | None, width: int, pad_id: int
) -> nn.Module:
    """The first layer of a sequence encoder: token embeddings ``(B, L) -> (B, L, width)``
    (``padding_idx=pad_id``) or a linear map of real-valued features ``(B, L, input_dim)``;
    exactly one of ``vocab_size`` and ``input_dim`` is given."""
    if (vocab_size is None) == (input_dim is None):
        raise ValueError("give exactly one of vocab_size= (token ids) or input_dim= (features)")
    if vocab_size is not None:
        return nn.Embedding(vocab_size, width, padding_idx=pad_id)
    return nn.Linear(int(input_dim or 0), width)


class SequenceEncoder(nn.Module):
    """An encoder that :class:`TransformerMTL` calls as it is (no adapter):
    ``forward(tokens, segments, mask) -> (B, L, hidden)``, ``mask`` True at real positions
    (padding masked out). :class:`SmallEncoder` is one, and so is the BiLSTM of
    :mod:`polytask.models.bilstm`."""


class SmallEncoder(SequenceEncoder):
    """A transformer encoder trained from scratch: token (or linear feature) embeddings plus
    learnt position and segment embeddings, then ``num_layers`` pre-norm encoder layers with
    padding masked out of attention (Vaswani et al. 2017; the MT-DNN shared layers of Liu et
    al. 2019 without pre-training).

    Shapes: ``tokens`` ``(B, L)`` (or features ``(B, L, input_dim)``), ``mask`` ``(B, L)`` ->
    ``(B, L, d_model)``.
    """

    def __init__(
        self,
        *,
        vocab_size: int | None,
        input_dim: int | None,
        d_model: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float,
        max_len: int,
        num_segments: int,
        pad_id: int,
    ) -> None:
        super().__init__()
        self.embed = input_embedding(vocab_size, input_dim, d_model, pad_id)
        self.positions = nn.Embedding(max_len, d_model)
        self.segments = nn.Embedding(num_segments, d_model) if num_segments > 0 else None
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, ffn_dim, dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.max_len = max_len

    def forward(self, tokens: Tensor, segments: Tensor | None, mask: Tensor) -> Tensor:
        L = tokens.shape[1]
        if self.max_len < L:
            raise ValueError(f"sequence length {L} exceeds max_len={self.max_len}")
        h = self.embed(tokens) + self.positions.weight[:L]
        if self.segments is not None and segments is not None:
            h = h + self.segments(segments)
        return self.norm(self.layers(h, src_key_padding_mask=~mask))


class EncoderAdapter(nn.Module):
    """Puts any encoder under polytask's task heads, for example a Hugging Face model.

    ``call="hf"`` calls ``module(input_ids=tokens, attention_mask=mask, token_type_ids=
    segments)`` and reads ``.last_hidden_state`` (or the first element of a tuple);
    ``call="positional"`` calls ``module(tokens, mask)`` and expects ``(B, L, hidden)``.

    Shapes: ``tokens`` ``(B, L)``, ``mask`` ``(B, L)`` -> ``(B, L, hidden_size)``.
    """

    def __init__(self, module: nn.Module, call: Literal["hf", "positional"] = "hf") -> None:
        super().__init__()
        if call not in ("hf", "positional"):
            raise ValueError(f"call must be 'hf' or 'positional', got {call!r}")
        self.module, self.call = module, call

    def forward(self, tokens: Tensor, segments: Tensor | None, mask: Tensor) -> Tensor:
        if self.call == "positional":
            out: Any = self.module(tokens, mask)
        else:
            kwargs = {"input_ids": tokens, "attention_mask": mask.long()}
            if segments is not None:
                kwargs["token_type_ids"] = segments
            out = self.module(**kwargs)
        out = getattr(out, "last_hidden_state", out)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, Tensor) or out.dim() != 3:
            raise ValueError("the adapted encoder must return (B, L, hidden) hidden states")
        return out


@register("transformer")
class TransformerMTL(MultiTaskModel):
    """A shared transformer encoder with task heads, as in MT-DNN (Liu, He, Chen, Gao:
    "Multi-Task Deep Neural Networks for Natural Language Understanding", ACL 2019): the
    encoder is shared and each task owns its head. Head types (``head_types``):

    - ``sequence``: classification of the sequence from its pooled vector (``[CLS]`` at
      position 0, or the mean over real tokens) -> ``(B, C)``;
    - ``pair``: the same over a sentence pair packed as ``[CLS] a [SEP] b`` with segment ids
      0/1 (give ``{"tokens", "segments"}``) -> ``(B, C)``;
    - ``regression``: a score -> ``(B, heads[t])`` (MT-DNN's STS-B head);
    - ``ranking``: one relevance score per (query, candidate) sequence -> ``(B, 1)``, to be
      trained with a pointwise or listwise loss (MT-DNN's QNLI ranking head);
    - ``token``: a label per token -> ``(B, L, C)`` (slot filling, tagging; label padding
      positions with ``-1`` so the loss ignores them);
    - ``crf``: a ``token`` head with a linear-chain CRF over its logits
      (:class:`~polytask.models.crf_head.CRFHead`; give the task the loss ``crf``): the
      model returns the transitions in ``TaskOutputs.transitions``, the loss is the
      sequence's negative log-likelihood and predictions are decoded by Viterbi.

    Padding (``pad_id`` in token ids, or ``mask`` False) is masked out of attention and mean
    pooling, so appending padding changes no output at real positions. ``encoder=`` puts any
    module under the same heads (see :class:`EncoderAdapter`); then give ``hidden_size=``.
    ``features`` are the encoder's hidden states ``(B, L, d)``, branched per task.

    Args:
        heads: ``{task: output size}``.
        head_types: ``{task: type}`` (default ``sequence`` for every task).
        vocab_size: token vocabulary (token-id inputs).
        input_dim: feature width for real-valued sequences ``(B, L, input_dim)`` instead.
        d_model: hidden size (64).
        num_layers: encoder layers (2).
        num_heads: attention heads (4).
        ffn_dim: feed-forward width (128).
        dropout: dropout in the encoder (0.1).
        max_len: longest sequence (512).
        num_segments: segment embeddings (2; 0 for none).
        pad_id: padding token id (0).
        pooling: ``cls`` or ``mean`` for sequence-level heads.
        head_dims: hidden sizes of every head (``()``: linear, as in MT-DNN).
        encoder: an encoder module (wrapped with :class:`EncoderAdapter` unless it is one).
        hidden_size: output width of ``encoder``.
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        head_types: Mapping[str, HeadType] | None = None,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        ffn_dim: int = 128,
        dropout: float = 0.1,
        max_len: int = 512,
        num_segments: int = 2,
        pad_id: int = 0,
        pooling: Literal["cls", "mean"] = "cls",
        head_dims: TowerSpec = (),
        encoder: nn.Module | None = None,
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        self.task_names = check_heads(heads, type(self).__name__)
        types = dict(head_types or {})
        for t, kind in types.items():
            if t not in heads:
                raise KeyError(f"head_types names unknown task {t!r}; tasks: {list(heads)}")
            if kind not in HEAD_TYPES:
                raise ValueError(f"head type of {t!r} must be one of {HEAD_TYPES}, got {kind!r}")
            if kind == "ranking" and heads[t] != 1:
                raise ValueError(f"ranking head {t!r} scores one value: heads[{t!r}] must be 1")
        self.head_types = {t: types.get(t, "sequence") for t in self.task_names}
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling, self.pad_id = pooling, pad_id
        if encoder is not None:
            if hidden_size is None:
                raise ValueError("encoder= needs hidden_size= (its output width)")
            native = isinstance(encoder, EncoderAdapter | SequenceEncoder)
            self.encoder: nn.Module = encoder if native else EncoderAdapter(encoder)
            width = hidden_size
        else:
            self.encoder = SmallEncoder(
                vocab_size=vocab_size,
                input_dim=input_dim,
                d_model=d_model,
                num_layers=num_layers,
                num_heads=num_heads,
                ffn_dim=ffn_dim,
                dropout=dropout,
                max_len=max_len,
                num_segments=num_segments,
                pad_id=pad_id,
            )
            width = d_model
        self.heads = towers(heads, width, head_dims, act="gelu")
        for t, kind in self.head_types.items():
            if kind == "crf":
                self.heads[t] = CRFHead(self.heads[t], heads[t])

    def _pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(1) / weights.sum(1)

    def forward(self, inputs: Tensor | Mapping[str, Tensor]) -> TaskOutputs:
        tokens, segments, mask = token_inputs(inputs, self.pad_id)
        hidden = self.encoder(tokens, segments, mask)
        branches = branch(hidden, self.task_names)
        predictions = {}
        for t in self.task_names:
            h = branches[t]
            x = h if self.head_types[t] in TOKEN_HEADS else self._pool(h, mask)
            predictions[t] = self.heads[t](x)
        transitions: dict[str, Tensor] = {
            t: h.transitions for t, h in self.heads.items() if isinstance(h, CRFHead)
        }
        return TaskOutputs(predictions, branches, {"mask": mask}, transitions=transitions)

    def shared_modules(self) -> Sequence[nn.Module]:
        return [self.encoder]

    def task_modules(self, task: str) -> Sequence[nn.Module]:
        return [self.heads[task]]
