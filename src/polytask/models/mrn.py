"""MRN: multilinear relationship networks (Long, Cao, Wang, Yu; NeurIPS 2017)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import Tensor, nn

from polytask.models.registry import register
from polytask.models.shared_bottom import SharedBottom


def tensor_normal_penalty(W: Tensor, precisions: Sequence[Tensor]) -> Tensor:
    """``vec(W)^T (S_1 (x) S_2 (x) S_3)^{-1} vec(W)`` for ``W`` ``(T, O, I)`` and the inverse
    covariances ``(A_T, A_O, A_I)`` of its three modes: the negative log-density of a tensor
    normal prior up to its log-determinant terms (Long et al. 2017, eq. 6)."""
    A_t, A_o, A_i = precisions
    return torch.einsum("toi,tu,op,ij,upj->", W, A_t, A_o, A_i, W)


def flip_flop(W: Tensor, covariances: Sequence[Tensor], eps: float) -> list[Tensor]:
    """One flip-flop update of the three mode covariances of ``W`` ``(T, O, I)`` (Long et
    al. 2017, eq. 9): each is the covariance of ``W``'s unfolding along its mode, whitened by
    the other two (in turn: input, output, task, each with the newest others), plus
    ``eps I``. Each step maximises the prior's likelihood in one covariance with the others
    fixed, so the likelihood never decreases (for ``eps -> 0``). The Kronecker product fixes
    the covariances only up to scalings; the task covariance is kept at trace ``T`` by moving
    its scale to the input covariance."""
    T, O, I = W.shape
    S_t, S_o, S_i = covariances
    eye = lambda n: torch.eye(n, dtype=W.dtype, device=W.device)  # noqa: E731
    inv = torch.linalg.inv
    # Sequential: each mode is re-estimated with the other two at their newest values.
    S_i = torch.einsum("toi,tu,op,upj->ij", W, inv(S_t), inv(S_o), W) / (T * O) + eps * eye(I)
    S_o = torch.einsum("toi,tu,ij,upj->op", W, inv(S_t), inv(S_i), W) / (T * I) + eps * eye(O)
    S_t = torch.einsum("toi,op,ij,upj->tu", W, inv(S_o), inv(S_i), W) / (O * I)
    # Move the scale between the task and input modes (their Kronecker product, and so the
    # likelihood, is unchanged) so that the task covariance keeps trace T.
    scale = T / S_t.trace().clamp_min(1e-12)
    return [S_t * scale + eps * eye(T), S_o, S_i / scale]


@register("mrn")
class MRN(SharedBottom):
    """Multilinear relationship network (Long, Cao, Wang, Yu: "Learning Multiple Tasks with
    Multilinear Relationship Networks", NeurIPS 2017): a shared trunk and task towers whose
    layers of equal shape are tied by a tensor normal prior. For each tied layer the task
    weights are stacked into ``W`` ``(T, out, in)`` with
    ``vec(W) ~ N(0, Sigma_task (x) Sigma_out (x) Sigma_in)``; the prior's negative
    log-likelihood ``lambda/2 * vec(W)^T Sigma^{-1} vec(W)`` is the model's :meth:`penalty`
    (the trainer adds its gradient; it is not a task loss). The three covariances are buffers
    re-estimated by a flip-flop step (:func:`flip_flop`) every ``update_every`` training
    penalties; ``task_covariance()`` shows the learnt task relations.

    Options as :class:`~polytask.models.SharedBottom`, plus:

    Args:
        strength: ``lambda`` of the prior (``1e-5``). The paper's MAP objective sums the
            loss over the training set and adds the prior once; with a per-sample mean loss
            that is ``lambda ~ 1 / N_train``. The quadratic form is about the number of tied
            weights once the covariances are fitted, so a large ``lambda`` shrinks the
            towers (``1e-3`` cost ~10 points of one-epoch MultiMNIST accuracy).
        update_every: training steps between covariance updates (50).
        eps: ridge added to every covariance (``1e-3``).
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        *,
        input_dim: int | None = None,
        trunk: str | nn.Module = "mlp",
        trunk_dims: Sequence[int] = (64, 64),
        feature_dim: int | None = None,
        head_dims: Sequence[int] = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
        strength: float = 1e-5,
        update_every: int = 50,
        eps: float = 1e-3,
    ) -> None:
        super().__init__(
            heads,
            input_dim=input_dim,
            trunk=trunk,
            trunk_dims=trunk_dims,
            feature_dim=feature_dim,
            head_dims=head_dims,
            activation=activation,
            dropout=dropout,
        )
        if strength < 0 or update_every < 1 or eps <= 0:
            raise ValueError("MRN needs strength >= 0, update_every >= 1 and eps > 0")
        self.strength, self.update_every, self.eps = float(strength), int(update_every), float(eps)
        self.tied = self._tied_layers()
        if not self.tied:
            raise ValueError("MRN found no tower layers of equal shape across tasks to tie")
        T = len(self.task_names)
        for k, index in enumerate(self.tied):
            out_dim, in_dim = self._layer(self.task_names[0], index).weight.shape
            for name, size in (("task", T), ("out", out_dim), ("in", in_dim)):
                self.register_buffer(f"cov{k}_{name}", torch.eye(size))
                self.register_buffer(f"prec{k}_{name}", torch.eye(size))
        self.calls = 0

    def _tower(self, task: str) -> nn.Sequential:
        return cast(nn.Sequential, self.towers[task])

    def _layer(self, task: str, index: int) -> nn.Linear:
        layer = self._tower(task)[index]
        assert isinstance(layer, nn.Linear)
        return layer

    def _tied_layers(self) -> list[int]:
        """Indices of the tower layers that are ``Linear`` with one shape in every task."""
        first = self._tower(self.task_names[0])
        tied = []
        for index, module in enumerate(first):
            if not isinstance(module, nn.Linear):
                continue
            shapes = {
                tuple(getattr(self._tower(t)[index], "weight", torch.empty(0)).shape)
                for t in self.task_names
            }
            if len(shapes) == 1:
                tied.append(index)
        return tied

    def _stacked(self, index: int) -> Tensor:
        return torch.stack([self._layer(t, index).weight for t in self.task_names])

    def _covariances(self, k: int, kind: str = "cov") -> list[Tensor]:
        return [getattr(self, f"{kind}{k}_{name}") for name in ("task", "out", "in")]

    def get_extra_state(self) -> dict[str, int]:
        return {"calls": self.calls}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.calls = int(state["calls"])

    def task_covariance(self, layer: int = -1) -> Tensor:
        """The learnt ``T x T`` task covariance of a tied layer (default the last)."""
        return self._covariances(range(len(self.tied))[layer])[0].clone()

    def penalty(self) -> Tensor | None:
        """``lambda/2 * sum_layers vec(W)^T Sigma^{-1} vec(W)``; in training mode, every
        ``update_every`` calls first re-estimates the covariances."""
        if self.strength == 0:
            return None
        if self.training:
            if self.calls % self.update_every == 0:
                self._update_covariances()
            self.calls += 1
        total = None
        for k, index in enumerate(self.tied):
            term = tensor_normal_penalty(self._stacked(index), self._covariances(k, "prec"))
            total = term if total is None else total + term
        assert total is not None
        return 0.5 * self.strength * total

    @torch.no_grad()
    def _update_covariances(self) -> None:
        for k, index in enumerate(self.tied):
            new = flip_flop(self._stacked(index).float(), self._covariances(k), self.eps)
            for name, value in zip(("task", "out", "in"), new, strict=True):
                getattr(self, f"cov{k}_{name}").copy_(value)
                getattr(self, f"prec{k}_{name}").copy_(torch.linalg.inv(value))
