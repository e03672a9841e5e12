"""Step cost of a user's own ``nn.Module`` (no polytask branches) through ``polytask.backward``.

Model (issue 22's shapes): an MLP trunk 256 -> 3 x 512 with ReLU, ``T`` heads 512-64-1 that
read the trunk's output tensor directly, MSE, batch 256, Adam, 2 threads. Each kind is timed
in alternating blocks (median step time per block, best block kept), against references in
the same run:

- representation level, MGDA, ``features=z``: x the plain ``sum(losses).backward()`` step;
- parameter level, UPGrad, ``features=z, shared_params=trunk`` with and without
  ``LinearTaps([model.trunk])``: x ``T`` separate ``loss_t.backward()`` calls;

each with the losses as a list and as one ``torch.stack``.

    python benchmarks/user_model.py           # quick: 2 blocks of 8 steps
    python benchmarks/user_model.py --full    # 4 blocks of 15 steps
Results: benchmarks/results/user_model.json and .md
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import polytask
from common import markdown_table, meta, write_results
from polytask.gradients import LinearTaps


class PlainModel(nn.Module):
    """A user's model: a trunk and ``T`` heads that read its output tensor."""

    def __init__(self, T: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width_in in (256, 512, 512):
            layers += [nn.Linear(width_in, 512), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 1)) for _ in range(T)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z = self.trunk(x)
        return z, [head(z).squeeze(-1) for head in self.heads]


def timings(T: int, level: str, blocks: int, steps: int) -> dict[str, float]:
    """Best-block median seconds per step of every kind at ``level``."""
    torch.manual_seed(0)
    model = PlainModel(T)
    optimizer = torch.optim.Adam(model.parameters())
    x, y = torch.randn(256, 256), torch.randn(T, 256)
    balancer = polytask.balancers.create("mgda" if level == "representation" else "upgrad")
    taps = LinearTaps([model.trunk])
    shared = list(model.trunk.parameters())

    def step(kind: str) -> None:
        with taps:
            z, outs = model(x)
        losses = [((o - y[t]) ** 2).mean() for t, o in enumerate(outs)]
        optimizer.zero_grad()
        if kind == "plain":
            torch.stack(losses).sum().backward()
        elif kind == "separate":
            for loss in losses:
                loss.backward(retain_graph=True)
        else:
            given = torch.stack(losses) if kind.startswith("stacked") else losses
            if level == "representation":
                polytask.backward(given, balancer, features=z)
            else:
                extra = {"taps": taps} if kind.endswith("taps") else {}
                polytask.backward(given, balancer, features=z, shared_params=shared, **extra)
        optimizer.step()

    kinds = ["plain", "list", "stacked"]
    if level == "parameter":
        kinds = ["plain", "separate", "list", "stacked", "list+taps", "stacked+taps"]
    best: dict[str, float] = {}
    for _ in range(blocks):
        for kind in kinds:
            for _ in range(3):
                step(kind)
            seconds = []
            for _ in range(steps):
                started = time.perf_counter()
                step(kind)
                seconds.append(time.perf_counter() - started)
            best[kind] = min(best.get(kind, float("inf")), statistics.median(seconds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    blocks, steps = (4, 15) if args.full else (2, 8)
    rows, table = [], []
    for level, T, reference in (
        ("representation", 32, "plain"),
        ("parameter", 8, "separate"),
        ("parameter", 32, "separate"),
    ):
        best = timings(T, level, blocks, steps)
        ratios = {k: v / best[reference] for k, v in best.items() if k not in ("plain", reference)}
        rows.append({"level": level, "T": T, "reference": reference, "seconds": best,
                     "ratios": ratios})  # fmt: skip
        for kind, ratio in ratios.items():
            table.append([level, T, kind, f"{ratio:.2f} x {reference}"])
            print(f"{level} T={T} {kind}: {ratio:.2f} x {reference}", flush=True)
    info = meta("user_model.py", blocks=blocks, steps=steps)
    lines = [
        "# A user's own model through polytask.backward",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, 2 threads. "
        "Targets (issue 22): representation <= 1.3 x plain, parameter <= 1.15 x separate.",
        "",
        *markdown_table(["level", "T", "losses", "step cost"], table),
    ]
    write_results("user_model", {"meta": info, "rows": rows}, lines)


if __name__ == "__main__":
    main()
