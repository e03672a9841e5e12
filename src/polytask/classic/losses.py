"""The data terms of the classic estimators, vectorised over tasks: each task's mean loss
over its own rows, ``sum_t (1/m_t) sum_{i in t} loss(y_i, x_i w_t + b_t)``, so a task with
many rows does not outweigh the others (reference text 01).

A loss is built once per fit on the training rows sorted by task (:class:`TaskRows`) and
then gives the value and the gradient over all tasks with one pass over the rows
(``np.add.reduceat`` per task; no Python loop over tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

Array = np.ndarray


@dataclass
class TaskRows:
    """Training rows sorted by task: ``X`` ``(n, d)``, ``y`` ``(n,)``, ``codes`` ``(n,)``
    (each row's task index, non-decreasing), and per task the first row ``starts`` and the
    row count ``counts`` ``(T,)``."""

    X: Array
    y: Array
    codes: Array
    starts: Array
    counts: Array

    @classmethod
    def sort(cls, X: Array, y: Array, codes: Array, T: int) -> TaskRows:
        """The rows ordered by task (stable); every task must have a row."""
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=T)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return cls(X[order], y[order], codes[order], starts, counts)

    def task_sums(self, values: Array) -> Array:
        """Per-task sums of per-row ``values`` ``(n, ...)`` -> ``(T, ...)``."""
        return np.add.reduceat(values, self.starts, axis=0)

    def task_grams(self, X: Array) -> Array:
        """Each task's ``X_t^T X_t / m_t`` ``(T, d, d)``: one batched product when every
        task has as many rows, one product per task otherwise."""
        counts, d = self.counts, X.shape[1]
        if np.all(counts == counts[0]):
            blocks = X.reshape(len(counts), counts[0], d)
            return np.matmul(blocks.transpose(0, 2, 1), blocks) / counts[0]
        return np.stack([
            X[a : a + m].T @ X[a : a + m] / m for a, m in zip(self.starts, counts, strict=True)
        ])  # fmt: skip

    def largest_gram_eigenvalue(self, X: Array) -> float:
        """``max_t lambda_max(X_t^T X_t) / m_t``: the Lipschitz constant of the gradient of
        each task's mean squared error, ``(1 / (2 m_t)) ||X_t w - y_t||^2``."""
        return max(
            float(np.linalg.eigvalsh(X[a : a + m].T @ X[a : a + m])[-1]) / m
            for a, m in zip(self.starts, self.counts, strict=True)
        )


class SquaredLoss:
    """``sum_t (1/(2 m_t)) ||y_t - X_t w_t - b_t||^2``. With intercepts, each task's rows
    and targets are centred once, which solves for ``b_t`` exactly
    (``b_t = mean(y_t) - mean(X_t) w_t``), so the solver sees only ``W``."""

    bias_columns = 0

    def __init__(self, rows: TaskRows, fit_intercept: bool) -> None:
        counts = rows.counts
        self.x_mean = rows.task_sums(rows.X) / counts[:, None]
        self.y_mean = rows.task_sums(rows.y) / counts
        if not fit_intercept:
            self.x_mean[:] = 0.0
            self.y_mean[:] = 0.0
        self.X = rows.X - self.x_mean[rows.codes]
        self.y = rows.y - self.y_mean[rows.codes]
        self.rows = rows
        self.row_weight = 1.0 / counts[rows.codes]
        T, d = len(counts), self.X.shape[1]
        self.gram: Array | None = None
        if T * d * d < len(self.y) * d:  # per-task Gram matrices are smaller than the rows
            # (as scikit-learn's precompute=True): the gradient G_t w_t - c_t costs T d^2
            # per step instead of n d, e.g. one X shared by many tasks, or School.
            self.gram, self.cross = self._normal_equations()
            self.y_square = rows.task_sums(self.y**2) / counts
            self.lipschitz = float(np.linalg.eigvalsh(self.gram)[:, -1].max())
        else:
            self.lipschitz = rows.largest_gram_eigenvalue(self.X)

    def normal_equations(self) -> tuple[Array, Array]:
        """Each task's ``(G_t, c_t)`` ``((T, d, d), (T, d))`` with the data term
        ``sum_t (1/2) w_t^T G_t w_t - c_t^T w_t + const``, for closed-form solutions."""
        if self.gram is not None:
            return self.gram, self.cross
        return self._normal_equations()

    def _normal_equations(self) -> tuple[Array, Array]:
        rows = self.rows
        cross = rows.task_sums(self.y[:, None] * self.X) / rows.counts[:, None]
        return rows.task_grams(self.X), cross

    def _residual(self, W: Array) -> Array:
        return np.einsum("nd,nd->n", self.X, W[self.rows.codes]) - self.y

    def value(self, W: Array, bias: Array | None) -> float:
        """The data term at ``W`` ``(T, d)``."""
        if self.gram is not None:
            GW = np.einsum("tde,te->td", self.gram, W)
            return 0.5 * float(np.sum(W * GW) - 2 * np.sum(W * self.cross) + self.y_square.sum())
        r = self._residual(W)
        return 0.5 * float((r * self.row_weight) @ r)

    def gradient(self, W: Array, bias: Array | None) -> tuple[Array, Array | None]:
        """``(d/dW, None)``: intercepts are solved in closed form."""
        if self.gram is not None:
            return np.einsum("tde,te->td", self.gram, W) - self.cross, None
        scaled = self._residual(W) * self.row_weight
        return self.rows.task_sums(scaled[:, None] * self.X), None

    def intercepts(self, W: Array, bias: Array | None) -> Array:
        """Each task's intercept ``(T,)`` for the weights ``W``."""
        return self.y_mean - np.einsum("td,td->t", self.x_mean, W)


class LogisticLoss:
    """``sum_t (1/m_t) sum_{i in t} log(1 + exp(-s_i (x_i w_t + b_t)))`` with labels
    ``s_i`` in ``{-1, +1}`` (Liu, Ji & Ye 2009 and MALSAR's ``Logistic_*`` solvers). The
    intercepts ``b`` ``(T,)`` are unpenalised variables of the solver (no closed form)."""

    def __init__(self, rows: TaskRows, fit_intercept: bool) -> None:
        self.rows = rows
        self.bias_columns = 1 if fit_intercept else 0
        self.row_weight = 1.0 / rows.counts[rows.codes]
        X = np.column_stack([rows.X, np.ones(len(rows.y))]) if fit_intercept else rows.X
        # The logistic function's second derivative is at most 1/4.
        self.lipschitz = rows.largest_gram_eigenvalue(X) / 4

    def _margins(self, W: Array, bias: Array | None) -> Array:
        z = np.einsum("nd,nd->n", self.rows.X, W[self.rows.codes])
        if bias is not None:
            z = z + bias[self.rows.codes]
        return self.rows.y * z

    def value(self, W: Array, bias: Array | None) -> float:
        """The data term at ``W`` ``(T, d)`` and ``bias`` ``(T,)`` (or ``None``)."""
        return float(np.logaddexp(0.0, -self._margins(W, bias)) @ self.row_weight)

    def gradient(self, W: Array, bias: Array | None) -> tuple[Array, Array | None]:
        """``(d/dW, d/dbias)``."""
        scaled = -self.rows.y * expit(-self._margins(W, bias)) * self.row_weight
        grad_bias = self.rows.task_sums(scaled) if bias is not None else None
        return self.rows.task_sums(scaled[:, None] * self.rows.X), grad_bias

    def intercepts(self, W: Array, bias: Array | None) -> Array:
        """Each task's intercept ``(T,)``."""
        return bias if bias is not None else np.zeros(W.shape[0])
