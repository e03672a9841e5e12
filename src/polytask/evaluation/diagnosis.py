"""The seesaw diagnosis: why tasks fight, measured from a short training run.

Reference text 02 names three causes of negative transfer; each is measured from the task
losses and the Gramian of the task gradients recorded at every step (:class:`Recording`):

1. **gradient conflict**: pairwise cosines ``G_ij / sqrt(G_ii G_jj)`` of the task gradients
   over time, the fraction of steps with a negative cosine;
2. **different convergence speeds**: each task's loss ratio ``r_t = L_t(end) / L_t(0)`` and
   its relative inverse training rate ``r_t / mean(r)`` (GradNorm's quantity, Chen et al.
   2018);
3. **different loss scales**: the loss magnitudes and gradient norms ``sqrt(G_tt)`` at the
   start of training, and the ratio of the largest to the smallest.

:func:`diagnose` states which are present, how strongly, with the numbers, and suggests
balancers that target each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Balancers that target each cause (all registered in ``polytask.balancers``).
SUGGESTIONS: dict[str, list[str]] = {
    "conflict": ["pcgrad", "cagrad", "nash_mtl", "upgrad"],
    "speed": ["dwa", "gradnorm", "lbtw", "famo"],
    "scale": ["gradient_norm", "uncertainty", "realtime_loss", "db_mtl"],
}


@dataclass
class Thresholds:
    """When a cause counts as present.

    Attributes:
        conflict_mean_cosine: a pair whose mean cosine is at most this conflicts (-0.1) ...
        conflict_strong_cosine: ... or whose cosine is below this (-0.1) ...
        conflict_strong_fraction: ... on at least this fraction of steps (0.3). Slightly
            negative cosines (near-orthogonal gradients, common when tasks use different
            features) are reported but are not a conflict.
        speed_ratio: the largest loss ratio over the smallest (3.0) ...
        speed_gap: ... with at least this absolute gap between them (0.2).
        scale_ratio: the largest initial loss or gradient norm over the smallest (10.0).
    """

    conflict_mean_cosine: float = -0.1
    conflict_strong_cosine: float = -0.1
    conflict_strong_fraction: float = 0.3
    speed_ratio: float = 3.0
    speed_gap: float = 0.2
    scale_ratio: float = 10.0


@dataclass
class Recording:
    """Per-step task losses ``(S, T)`` and Gramians ``(S, T, T)`` of a training run."""

    tasks: list[str]
    level: str
    losses: list[Tensor] = field(default_factory=list)
    gramians: list[Tensor] = field(default_factory=list)

    def add(self, losses: Tensor, gramian: Tensor) -> None:
        """Record one step (kept on the device until :meth:`arrays`)."""
        self.losses.append(losses.detach())
        self.gramians.append(gramian.detach())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(losses (S, T), gramians (S, T, T))`` as float64 arrays."""
        if not self.losses:
            raise ValueError("nothing was recorded: the run made no step")
        L = torch.stack(self.losses).double().cpu().numpy()
        G = torch.stack(self.gramians).double().cpu().numpy()
        return L, G


@dataclass
class Finding:
    """One cause: whether it is present, how strongly (0 = absent; larger = stronger), the
    numbers behind it, a sentence, balancers to try, and the rule that decides presence."""

    cause: str
    present: bool
    strength: float
    numbers: dict[str, Any]
    explanation: str
    suggestions: list[str]
    rule: str = ""


@dataclass
class Diagnosis:
    """The three findings and the time series behind them (for plots)."""

    tasks: list[str]
    level: str
    steps: int
    findings: dict[str, Finding]
    cosines: np.ndarray  # (S, T, T)
    loss_ratios: np.ndarray  # (S, T): L_t(s) / L_t(0)
    grad_norms: np.ndarray  # (S, T)
    losses: np.ndarray  # (S, T)

    @property
    def present(self) -> list[str]:
        """Names of the causes found."""
        return [name for name, f in self.findings.items() if f.present]

    def to_markdown(self) -> str:
        """The diagnosis as a markdown section."""
        lines = [
            f"Diagnosis over {self.steps} steps at the {self.level} level, tasks "
            + ", ".join(self.tasks)
            + ".",
            "",
            "| cause | present | strength | evidence |",
            "| --- | --- | --- | --- |",
        ]
        for f in self.findings.values():
            lines.append(
                f"| {f.cause} | {'yes' if f.present else 'no'} | {f.strength:.2f} | "
                f"{f.explanation} |"
            )
        lines += ["", "How presence is decided (the evidence column is read against these):", ""]
        lines += [f"- {f.cause}: {f.rule}" for f in self.findings.values() if f.rule]
        lines += ["", "What to try:", ""]
        if self.present:
            for name in self.present:
                f = self.findings[name]
                lines.append(f"- **{f.cause}**: try {', '.join(f'`{s}`' for s in f.suggestions)}.")
        else:
            lines.append("- No cause of negative transfer found: equal weighting is a fair start.")
        return "\n".join(lines)


def _mean_head(x: np.ndarray, fraction: float) -> np.ndarray:
    k = max(1, round(len(x) * fraction))
    return x[:k].mean(axis=0)


def _mean_tail(x: np.ndarray, fraction: float) -> np.ndarray:
    k = max(1, round(len(x) * fraction))
    return x[-k:].mean(axis=0)


def diagnose(recording: Recording, thresholds: Thresholds | None = None) -> Diagnosis:
    """Measure the three causes from a :class:`Recording` (see the module docstring).

    Raises:
        ValueError: fewer than two tasks, or nothing recorded.
    """
    th = thresholds or Thresholds()
    T = len(recording.tasks)
    if T < 2:
        raise ValueError("the diagnosis needs at least two tasks")
    L, G = recording.arrays()
    S = L.shape[0]
    norms = np.sqrt(np.clip(np.diagonal(G, axis1=1, axis2=2), 0.0, None))
    denom = np.maximum(norms[:, :, None] * norms[:, None, :], 1e-300)
    cos = np.clip(G / denom, -1.0, 1.0)
    names = recording.tasks

    # 1. conflict
    pairs = {}
    for i in range(T):
        for j in range(i + 1, T):
            c = cos[:, i, j]
            pairs[f"{names[i]}~{names[j]}"] = {
                "mean_cosine": float(c.mean()),
                "negative_fraction": float((c < 0).mean()),
                "strongly_negative_fraction": float((c < th.conflict_strong_cosine).mean()),
            }
    conflicting = {
        k: v
        for k, v in pairs.items()
        if v["mean_cosine"] <= th.conflict_mean_cosine
        or v["strongly_negative_fraction"] >= th.conflict_strong_fraction
    }
    worst = min(pairs.items(), key=lambda kv: kv[1]["mean_cosine"])
    conflict = Finding(
        "gradient conflict",
        bool(conflicting),
        max(0.0, -worst[1]["mean_cosine"]) if conflicting else 0.0,
        {"pairs": pairs},
        (
            f"pair {worst[0]}: mean cosine {worst[1]['mean_cosine']:+.2f}, negative on "
            f"{100 * worst[1]['negative_fraction']:.0f}% of steps, below "
            f"{th.conflict_strong_cosine} on {100 * worst[1]['strongly_negative_fraction']:.0f}%"
        ),
        SUGGESTIONS["conflict"],
        f"present when a pair's mean cosine is at most {th.conflict_mean_cosine} or its "
        f"cosine is below {th.conflict_strong_cosine} on at least "
        f"{100 * th.conflict_strong_fraction:.0f}% of steps. A cosine a little below 0 "
        "(nearly orthogonal gradients, common when tasks use different features) is "
        "reported but is not a conflict, so 'negative on most steps' and 'no' can stand "
        "together.",
    )

    # 2. convergence speed: loss ratios from the first 5% to the last 10% of steps
    start = _mean_head(L, 0.05)
    safe_start = np.where(start > 0, start, np.nan)
    ratios = _mean_tail(L, 0.10) / safe_start
    finite = ratios[np.isfinite(ratios)]
    if finite.size >= 2:
        high, low = float(finite.max()), float(finite.min())
        speed_ratio = high / max(low, 1e-3)
        speed_present = speed_ratio >= th.speed_ratio and high - low >= th.speed_gap
    else:
        high = low = speed_ratio = math.nan
        speed_present = False
    relative = ratios / np.nanmean(ratios)
    speed = Finding(
        "different convergence speeds",
        speed_present,
        math.log10(speed_ratio) if speed_present else 0.0,
        {
            "loss_ratio": dict(zip(names, map(float, ratios), strict=True)),
            "relative_inverse_rate": dict(zip(names, map(float, relative), strict=True)),
        },
        "loss ratios L(end)/L(0): "
        + ", ".join(f"{n} {r:.3f}" for n, r in zip(names, ratios, strict=True))
        + (f" (largest/smallest {speed_ratio:.1f}x)" if math.isfinite(speed_ratio) else ""),
        SUGGESTIONS["speed"],
        f"present when the largest loss ratio L(end)/L(0) is at least {th.speed_ratio:g}x the "
        f"smallest and they differ by at least {th.speed_gap:g}.",
    )

    # 3. scale: initial loss magnitudes and gradient norms
    first_losses = np.abs(start)
    first_norms = _mean_head(norms, 0.05)

    def spread(x: np.ndarray) -> float:
        positive = x[x > 0]
        return float(positive.max() / positive.min()) if positive.size >= 2 else 1.0

    loss_spread, norm_spread = spread(first_losses), spread(first_norms)
    biggest = max(loss_spread, norm_spread)
    scale = Finding(
        "different loss scales",
        biggest >= th.scale_ratio,
        math.log10(biggest) if biggest >= th.scale_ratio else 0.0,
        {
            "initial_loss": dict(zip(names, map(float, first_losses), strict=True)),
            "initial_gradient_norm": dict(zip(names, map(float, first_norms), strict=True)),
            "loss_ratio": loss_spread,
            "gradient_norm_ratio": norm_spread,
        },
        f"initial losses differ {loss_spread:.1f}x, gradient norms {norm_spread:.1f}x",
        SUGGESTIONS["scale"],
        f"present when the largest initial loss or gradient norm is at least "
        f"{th.scale_ratio:g}x the smallest.",
    )
    return Diagnosis(
        tasks=list(names),
        level=recording.level,
        steps=S,
        findings={"conflict": conflict, "speed": speed, "scale": scale},
        cosines=cos,
        loss_ratios=L / np.where(start > 0, start, 1.0),
        grad_norms=norms,
        losses=L,
    )


def pair_names(tasks: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``."""
    return [(i, j) for i in range(len(tasks)) for j in range(i + 1, len(tasks))]
