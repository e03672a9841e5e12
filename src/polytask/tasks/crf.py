"""A linear-chain conditional random field over a token task's logits (Lafferty, McCallum,
Pereira, ICML 2001): its loss with missing labels, and its decoding.

A tagging of the real positions ``i_1 < ... < i_n`` of a sequence with tags ``y`` scores

``s(y) = start[y_1] + sum_k E[i_k, y_k] + sum_{k>1} A[y_{k-1}, y_k] + end[y_n]``

with the emissions ``E`` ``(L, C)`` (the head's logits) and the transitions packed in one
``(C + 2, C)`` tensor: rows ``0..C-1`` are ``A`` (row: the previous tag, column: the
next), row ``C`` is ``start`` and row ``C + 1`` is ``end``. Padding positions are skipped:
the chain runs over the real positions only, so padding changes nothing.

The loss is the negative log-likelihood of the labels; positions without a label (negative
class, the subword pieces after a word's first) are marginalised out, the partially
annotated CRF of Tsuboi, Kashima, Mori, Oda, Matsumoto (COLING 2008):

``NLL = log sum_y exp s(y) - log sum_{y agrees with the labels} exp s(y)``

(both sums by the forward algorithm; with every position labelled the second one is the
gold path's score). A sequence with no label has NLL 0 and no gradient.

Decoding returns max-marginals ``m[i, c] = max_{y: y_i = c} s(y)`` (max-product forward and
backward passes): their argmax at every position is the Viterbi path (when it is unique),
so everything that reads a token task's prediction by ``argmax(-1)`` (metrics, users of
:meth:`polytask.training.load_run.LoadedRun.predict`) decodes with the CRF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor


def full_precision(function: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run ``function`` with autocast off and half-precision tensor arguments in float32:
    under mixed precision the forward algorithm's matrix products (exponentials multiplied
    over the sequence) would otherwise run in bfloat16 or float16 (8 or 11 bits)."""

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Tensor:
        def widen(a: Any) -> Any:
            half = isinstance(a, Tensor) and a.dtype in (torch.float16, torch.bfloat16)
            return a.float() if half else a

        first = next(a for a in (*args, *kwargs.values()) if isinstance(a, Tensor))
        with torch.autocast(first.device.type, enabled=False):
            return function(*map(widen, args), **{k: widen(v) for k, v in kwargs.items()})

    return wrapped


def split_transitions(transitions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(A (C, C), start (C,), end (C,))`` from the packed ``(C + 2, C)`` tensor."""
    C = transitions.shape[-1]
    if transitions.shape != (C + 2, C):
        raise ValueError(
            f"CRF transitions must have shape (C + 2, C) for C tags, got {tuple(transitions.shape)}"
        )
    return transitions[:C], transitions[C], transitions[C + 1]


def real_positions(emissions: Tensor, extras: Mapping[str, Tensor]) -> Tensor:
    """The positions a chain runs over: the model's ``extras["mask"]`` ``(B, L)`` (True at
    real tokens, as the sequence models set it), every position when it has none."""
    mask = extras.get("mask")
    if mask is None:
        return torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
    if mask.shape != emissions.shape[:2]:
        raise ValueError(
            f"extras['mask'] has shape {tuple(mask.shape)}; the CRF needs one (B, L) flag per "
            f"position of the logits {tuple(emissions.shape)}"
        )
    return mask.to(torch.bool)


def _check(emissions: Tensor, transitions: Tensor, real: Tensor) -> None:
    if emissions.dim() != 3:
        raise ValueError(f"CRF emissions must be (B, L, C), got {tuple(emissions.shape)}")
    if transitions.shape[-1] != emissions.shape[-1]:
        raise ValueError(
            f"CRF transitions are for {transitions.shape[-1]} tags, the logits have "
            f"{emissions.shape[-1]}"
        )
    if real.shape != emissions.shape[:2]:
        raise ValueError(
            f"the real-position mask {tuple(real.shape)} does not fit the logits "
            f"{tuple(emissions.shape)}"
        )


def _forward(
    scores: Tensor, start: Tensor, real: Tensor, moved: Callable[[Tensor], Tensor]
) -> list[Tensor]:
    """The forward recursion over the real positions: ``alpha_i`` ``(B, C)`` for every
    position ``i`` (carried unchanged over padding), ``start + scores[first real]`` at a
    row's first real position and ``moved(alpha) + scores[i]`` after it; ``moved`` is the
    semiring's sum over the previous tag (logsumexp for the partition, max for decoding)."""
    alpha = start.expand(scores.shape[0], -1)
    started = torch.zeros_like(real[:, 0])
    alphas = []
    for i in range(scores.shape[1]):
        step = torch.where(started.unsqueeze(1), moved(alpha), start) + scores[:, i]
        alpha = torch.where(real[:, i].unsqueeze(1), step, alpha)
        started = started | real[:, i]
        alphas.append(alpha)
    return alphas


@full_precision
def log_partition(
    emissions: Tensor, transitions: Tensor, real: Tensor, allowed: Tensor | None = None
) -> Tensor:
    """``log sum_y exp s(y)`` per sequence, over the taggings whose tag at every real
    position is ``allowed`` (all taggings when ``allowed`` is ``None``).

    Args:
        emissions: ``(B, L, C)``.
        transitions: ``(C + 2, C)``, packed as the module says.
        real: ``(B, L)`` bool, the positions the chain runs over (at least one per row).
        allowed: ``(B, L, C)`` bool or ``None``; every real position needs one allowed tag.

    Returns:
        ``(B,)``.
    """
    _check(emissions, transitions, real)
    A, start, end = split_transitions(transitions.to(emissions.dtype))
    scores = emissions
    if allowed is not None:
        scores = emissions.masked_fill(~allowed, float("-inf"))
    # logsumexp_i(alpha_i + A_ij) as a matrix product in the exp domain, each factor shifted
    # by its maximum: O(B C^2) in one GEMM per position instead of a (B, C, C) tensor (and
    # its backward) per position, 40x faster at SNIPS' 72 tags. A transition more than ~88
    # (float32) below the largest one counts as impossible (about -87, not -inf).
    shift = A.detach().max()
    expA = (A - shift).exp()

    def logsumexp_moved(alpha: Tensor) -> Tensor:
        top = alpha.detach().amax(1, keepdim=True).clamp_min(-1e30)  # finite if all -inf
        summed = ((alpha - top).exp() @ expA).clamp_min(torch.finfo(alpha.dtype).tiny)
        return summed.log() + top + shift  # (the clamp keeps log(0)'s gradient finite)

    alpha = _forward(scores, start, real, logsumexp_moved)[-1]
    return torch.logsumexp(alpha + end, dim=1)


@full_precision
def token_losses(
    emissions: Tensor, target: Tensor, labelled: Tensor, transitions: Tensor, real: Tensor
) -> Tensor:
    """Each sequence's NLL (module docstring) spread evenly over its labelled tokens:
    ``(B, L)``, ``NLL_b / n_b`` at the ``n_b`` labelled positions of row ``b`` and 0
    elsewhere. The masked sum over labelled tokens is then ``sum_b NLL_b`` and the masked
    mean the NLL per labelled token (as cross-entropy's scale), with no special case in the
    code that averages, weighs rows or counts labels.

    Args:
        emissions: ``(B, L, C)`` logits.
        target: ``(B, L)`` tag ids (any value where ``labelled`` is False).
        labelled: ``(B, L)`` bool; only real positions may be labelled.
        transitions: ``(C + 2, C)``.
        real: ``(B, L)`` bool.
    """
    labelled = labelled & real
    C = emissions.shape[-1]
    gold = torch.nn.functional.one_hot(target.clamp(0, C - 1), C).to(torch.bool)
    allowed = gold | ~labelled.unsqueeze(-1)
    both = log_partition(
        torch.cat([emissions, emissions]),
        transitions,
        torch.cat([real, real]),
        torch.cat([torch.ones_like(allowed), allowed]),
    )
    nll = both[: emissions.shape[0]] - both[emissions.shape[0] :]
    count = labelled.sum(1).clamp_min(1).to(emissions.dtype)
    return torch.where(labelled, (nll / count).unsqueeze(1), torch.zeros_like(emissions[..., 0]))


@full_precision
def max_marginals(emissions: Tensor, transitions: Tensor, real: Tensor) -> Tensor:
    """``m[b, i, c] = max_{y: y_i = c} s(y)`` at the real positions (the emissions at the
    others): ``(B, L, C)``. ``m.argmax(-1)`` is the Viterbi path at the real positions.

    Args:
        emissions: ``(B, L, C)``.
        transitions: ``(C + 2, C)``.
        real: ``(B, L)`` bool.
    """
    _check(emissions, transitions, real)
    A, start, end = split_transitions(transitions.to(emissions.dtype))
    B, L, _ = emissions.shape
    # max score of a prefix ending in tag c at i, E[i] included
    forward = _forward(emissions, start, real, lambda alpha: (alpha.unsqueeze(2) + A).amax(1))
    backward = [emissions[:, 0]] * L  # max score of the rest after tag c at i, E[i] excluded
    beta = end.expand(B, -1)
    for i in reversed(range(L)):
        backward[i] = beta
        message = (A + (emissions[:, i] + beta).unsqueeze(1)).amax(dim=2)
        beta = torch.where(real[:, i].unsqueeze(1), message, beta)
    scores = torch.stack(forward, 1) + torch.stack(backward, 1)
    return torch.where(real.unsqueeze(-1), scores, emissions)
