"""Word labels on sub-word tokens: token classification (slot filling, tagging) with a
Hugging Face tokenizer, whose tokens are pieces of words (``playing`` -> ``play ##ing``).

A word's label goes to its first piece; later pieces and the tokenizer's special tokens
(``[CLS]``, ``[SEP]``, padding) get ``-1``, which polytask's losses and metrics skip. So a
tagger is trained and scored once per word, as the word-level data set counts, and span F1
(CoNLL convention) over the first pieces equals span F1 over the words. This is the
convention of BERT's NER experiments (Devlin et al., NAACL 2019, sec. 5.3) and of Hugging
Face's token-classification examples.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

IGNORE = -1


def align_labels(
    word_ids: Sequence[int | None], word_labels: Sequence[int], ignore: int = IGNORE
) -> list[int]:
    """Per token, its word's label at the word's first piece and ``ignore`` elsewhere.

    Args:
        word_ids: per token, the index of its word (``None`` for special tokens and
            padding), as a fast tokenizer's ``encoding.word_ids(i)`` gives them.
        word_labels: one label per word.

    Example:
        >>> align_labels([None, 0, 0, 1, 2, None], [3, 4, 5])
        [-1, 3, -1, 4, 5, -1]
    """
    out: list[int] = []
    previous: int | None = None
    for word in word_ids:
        if word is None or word == previous:
            out.append(ignore)
        else:
            if not 0 <= word < len(word_labels):
                raise ValueError(f"token of word {word}, but only {len(word_labels)} labels")
            out.append(int(word_labels[word]))
        previous = word
    return out


def tokenize_words(
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    word_labels: Sequence[Sequence[int]] | None = None,
    max_length: int | None = None,
) -> tuple[dict[str, Tensor], Tensor | None]:
    """Tokenize sentences given as words with a fast Hugging Face tokenizer.

    Args:
        tokenizer: a fast tokenizer (``tokenizer.is_fast``: it knows each token's word).
        sentences: each a list of words.
        word_labels: per sentence, one label per word (or ``None``).
        max_length: longest sequence in tokens; longer ones are cut, with a warning naming
            how many labelled words were lost.

    Returns:
        ``({"tokens", "mask", "segments"}, labels)``: token ids ``(N, L)``, the attention
        mask ``(N, L)`` (``True`` at real tokens), segment ids ``(N, L)``, and the labels
        aligned to tokens ``(N, L)`` (``-1`` where not scored), or ``None``. ``inputs`` is
        what :class:`~polytask.models.TransformerMTL` takes with an ``encoder=`` from
        Hugging Face.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "word labels need a fast tokenizer (one that knows each token's word): load it "
            "with AutoTokenizer.from_pretrained(name, use_fast=True)"
        )
    encoded = tokenizer(
        [list(s) for s in sentences],
        is_split_into_words=True,
        padding=True,
        truncation=max_length is not None,
        max_length=max_length,
        return_tensors="pt",
    )
    inputs = {
        "tokens": encoded["input_ids"],
        "mask": encoded["attention_mask"].to(torch.bool),
        "segments": encoded.get("token_type_ids", torch.zeros_like(encoded["input_ids"])),
    }
    if word_labels is None:
        return inputs, None
    rows, lost = [], 0
    for i, labels in enumerate(word_labels):
        if len(labels) != len(sentences[i]):
            raise ValueError(f"sentence {i} has {len(sentences[i])} words and {len(labels)} labels")
        word_ids = encoded.word_ids(i)
        rows.append(align_labels(word_ids, labels))
        lost += len(labels) - len({w for w in word_ids if w is not None})
    if lost:
        warnings.warn(
            f"max_length={max_length} cut {lost} labelled word(s) off the ends of sentences; "
            "they are neither trained nor scored (raise max_length to keep them)",
            stacklevel=2,
        )
    return inputs, torch.tensor(rows, dtype=torch.long)
