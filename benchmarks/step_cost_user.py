"""The "user model" family of ``benchmarks/step_cost.py``: a user's own ``nn.Module``.

Model (issue 22's shapes): an MLP trunk 256 -> 3 x 512 with ReLU and ``T`` heads 512-64-1
that read the trunk's output tensor ``z`` directly (no polytask branches), MSE, batch 256,
Adam, 2 threads. One process times, in alternating blocks whose order rotates each repeat:

- ``plain``: one ``sum(losses).backward()``;
- ``separate`` (parameter level): ``T`` separate ``loss_t.backward()`` calls;
- ``list`` and ``stacked``: ``polytask.backward`` with the losses as a list and as one
  ``torch.stack``, ``features=z`` (and ``shared_params`` plus the README's one line,
  ``LinearTaps([model.trunk])``, at the parameter level);
- ``torchjd`` (parameter level, methods torchjd has): torchjd's ``mtl_backward`` and
  ``jac_to_grad`` with its aggregator on the same model.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

# Targets of issue 22 at T = 8 and 32 for Gramian methods: (reference, largest ratio).
TARGETS = {"representation": ("plain", 1.3), "parameter": ("separate", 1.15)}


def plain_model(T: int) -> Any:
    """A user's model: a trunk and ``T`` heads that read its output tensor; ``forward``
    returns ``(z, [head_t(z) for each t])``."""
    import torch
    from torch import nn

    class PlainModel(nn.Module):
        def __init__(self) -> None:
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

    return PlainModel()


def kinds(level: str, torchjd: str | None) -> list[str]:
    """What one process times at ``level`` (``torchjd``: the aggregator's expression when
    torchjd has the method)."""
    names = ["plain", "list", "stacked"]
    if level == "parameter":
        names.insert(1, "separate")
        if torchjd is not None:
            names.append("torchjd")
    return names


def step_function(
    balancer: str, options: dict[str, Any], level: str, T: int, torchjd: str | None
) -> Any:
    """``step(kind)``: one optimizer step of the user model in the way ``kind`` names
    (``options``: what the balancer needs to be built for ``T`` tasks)."""
    import torch

    import polytask
    from polytask.gradients import LinearTaps

    torch.manual_seed(0)
    model = plain_model(T)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)
    x, y = torch.randn(256, 256), torch.randn(T, 256)
    method = polytask.balancers.create(balancer, **options)
    taps = LinearTaps([model.trunk]) if level == "parameter" else None
    shared = list(model.trunk.parameters())
    aggregator = None
    if torchjd is not None and level == "parameter":
        import torchjd.aggregation as tjd_aggregation
        from torchjd.autojac import jac_to_grad, mtl_backward

        aggregator = eval(torchjd, vars(tjd_aggregation))

    def step(kind: str) -> None:
        ours = kind in ("list", "stacked")
        with taps if ours and taps is not None else contextlib.nullcontext():
            z, outs = model(x)
        losses = [((o - y[t]) ** 2).mean() for t, o in enumerate(outs)]
        optimizer.zero_grad(set_to_none=True)
        if kind == "plain":
            torch.stack(losses).sum().backward()
        elif kind == "separate":
            for loss in losses:
                loss.backward(retain_graph=True)
        elif kind == "torchjd":
            mtl_backward(losses, features=z, shared_params=shared)
            jac_to_grad(shared, aggregator)
        else:
            given = torch.stack(losses) if kind == "stacked" else losses
            if level == "representation":
                result = polytask.backward(given, method, features=z)
            else:
                result = polytask.backward(
                    given, method, features=z, shared_params=shared, taps=taps
                )
            if result.path != "consumers":  # the one-backward path is what is measured
                raise RuntimeError(f"{kind}: took the {result.path!r} path, not 'consumers'")
        optimizer.step()

    return step


def measure_user(
    balancer: str,
    options: dict[str, Any],
    level: str,
    T: int,
    steps: int,
    repeats: int,
    torchjd: str | None,
) -> dict[str, object]:
    """Seconds per step of every kind (one list per kind, a value per block) and the
    block-by-block ratios of ``list``, ``stacked`` and ``torchjd`` to ``plain`` and (at the
    parameter level) to ``separate`` and of ``list``/``stacked`` to ``torchjd``."""
    import torch

    torch.set_num_threads(2)
    step = step_function(balancer, options, level, T, torchjd)
    timed = kinds(level, torchjd)
    for kind in timed:
        for _ in range(3):
            step(kind)
    times: dict[str, list[float]] = {kind: [] for kind in timed}
    for repeat in range(repeats):
        shift = repeat % len(timed)
        for kind in timed[shift:] + timed[:shift]:
            start = time.perf_counter()
            for _ in range(steps):
                step(kind)
            times[kind].append((time.perf_counter() - start) / steps)
    ratios = {
        f"{kind}/{reference}": [a / b for a, b in zip(times[kind], times[reference], strict=True)]
        for kind in ("list", "stacked", "torchjd")
        for reference in ("plain", "separate", "torchjd")
        if kind in times and reference in times and kind != reference
        and not (kind == "torchjd" and reference == "plain")
    }  # fmt: skip
    return {"seconds": times, "ratios": ratios}


def summarise_user(runs: list[dict]) -> dict[str, object]:
    """One row from a configuration's processes: the median of each kind's pooled block
    times and of each pooled ratio."""
    import statistics

    first = runs[0]
    return {
        "seconds": {
            kind: statistics.median(v for run in runs for v in run["seconds"][kind])
            for kind in first["seconds"]
        },
        "ratios": {
            key: statistics.median(v for run in runs for v in run["ratios"][key])
            for key in first["ratios"]
        },
        "processes": len(runs),
    }


def own_model_ratios() -> dict[tuple[int, str, str], float]:
    """The same method's ratio on polytask's own shared-bottom model, from the committed
    ``step_cost.json`` (x plain at the representation level, x separate at the parameter
    level): what the user model's path is compared with."""
    import json

    from common import RESULTS

    path = RESULTS / "step_cost.json"
    if not path.exists():
        return {}
    out = {}
    for r in json.loads(path.read_text())["rows"]:
        key = "ratio" if r["level"] == "representation" else "ratio_to_separate"
        if key in r:
            out[(r["T"], r["balancer"], r["level"])] = r[key]
    return out


def render_user(rows: list[dict], info: dict) -> list[str]:
    """The markdown of the family: one line per (T, method, level), the targets marked."""
    from common import markdown_table, missed_line

    own = own_model_ratios()
    checks = []
    table = []
    for r in rows:
        if "error" in r:
            table.append([r["T"], r["balancer"], r["level"], f"failed: {r['error']}"] + [""] * 6)
            continue
        ratios = r["ratios"]
        reference, limit = TARGETS[r["level"]]
        met = [ratios[f"{form}/{reference}"] <= limit for form in ("list", "stacked")]
        faster = [ratios[f"{form}/torchjd"] < 1 for form in ("list", "stacked")
                  if f"{form}/torchjd" in ratios]  # fmt: skip
        checks.append((r, all(met) and all(faster)))

        def cell(key: str, ratios: dict = ratios) -> str:
            return f"{ratios[key]:.2f}" if key in ratios else "-"

        table.append([
            r["T"], r["balancer"], r["level"],
            f"{r['seconds']['list'] * 1e3:.2f}",
            f"{cell('list/' + reference)} / {cell('stacked/' + reference)}",
            f"<= {limit} x {reference}",
            f"{cell('torchjd/separate')}" if "torchjd/separate" in ratios else "-",
            f"{cell('list/torchjd')} / {cell('stacked/torchjd')}"
            if "list/torchjd" in ratios else "-",
            "yes" if all(met) and all(faster) else "**no**",
            f"{own[key]:.2f}" if (key := (r["T"], r["balancer"], r["level"])) in own else "-",
        ])  # fmt: skip
    missed = [r for r, ok in checks if not ok]
    lines = [
        "# Step cost of a user's own model (issue 22)",
        "",
        f"`{info['command']}` on {info['machine']}, torch {info['torch']}, 2 threads. Model: "
        "a plain `nn.Module`, trunk 256-512-512-512 with ReLU, T heads 512-64-1 reading the "
        "trunk's output `z`, MSE, batch 256, Adam. Losses given to `polytask.backward` as a "
        "list and as one `torch.stack`, `features=z`; at the parameter level also "
        "`shared_params=trunk` and the README's one line, `LinearTaps([model.trunk])`. Every "
        "polytask step is checked to take the one-backward path (`result.path == "
        "'consumers'`).",
        "",
        f"Each configuration runs in {info['processes']} fresh process(es); in each, the method "
        "in both forms, the plain step, (parameter level) T separate backward calls and "
        "torchjd's `mtl_backward` + `jac_to_grad` with the same aggregator are timed in "
        f"alternating blocks of {info['steps']} steps, {info['repeats']} times, the order "
        "rotating; a ratio is the median of the block-by-block ratios. Targets (issue 22, "
        "Gramian methods, T = 8 and 32): representation <= 1.3x plain, parameter <= 1.15x "
        "T separate calls and faster than torchjd where torchjd has the method. The last "
        "column is the same method's ratio on polytask's own shared-bottom model of the same "
        "shapes, from the committed `step_cost.md` (another run): where both miss a target, "
        "the cost is the method's, not the user model's path.",
        "",
        missed_line(missed, len(checks)),
        "",
        *markdown_table(
            ["T", "balancer", "level", "ms / step (list)", "list / stacked", "target",
             "torchjd x separate", "list / stacked x torchjd", "met", "own model"],
            table,
        ),
    ]  # fmt: skip
    return lines
