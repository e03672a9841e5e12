"""L2 regularisation as an auxiliary task, with no coefficient to tune (reference text 03).

Trains a small regression MLP on noisy data three ways: no regularisation, plain weight decay
(a coefficient to tune), and `auxiliary_l2_`, which only steps against ||theta||^2 when the
task gradient would make it grow. Prints validation MSE and the parameter norm of each.

    python examples/auxiliary_l2.py
"""

from __future__ import annotations

import torch

from polytask.balancers.primary_auxiliary import auxiliary_l2_


def run(mode: str, steps: int = 1500) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 20, generator=g)
    w_true = torch.zeros(20)
    w_true[:3] = torch.tensor([1.0, -2.0, 0.5])
    y = x @ w_true + 0.5 * torch.randn(64, generator=g)
    x_val = torch.randn(512, 20, generator=g)
    y_val = x_val @ w_true
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    decay = 1e-2 if mode == "weight decay" else 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, weight_decay=decay)
    for _ in range(steps):
        optimizer.zero_grad()
        ((model(x).squeeze(1) - y) ** 2).mean().backward()
        if mode == "auxiliary L2":
            auxiliary_l2_(model.parameters())
        optimizer.step()
    with torch.no_grad():
        mse = float(((model(x_val).squeeze(1) - y_val) ** 2).mean())
        norm = float(torch.cat([p.flatten() for p in model.parameters()]).norm())
    return mse, norm


if __name__ == "__main__":
    for mode in ("none", "weight decay", "auxiliary L2"):
        mse, norm = run(mode)
        print(f"{mode:>13}: validation MSE {mse:.4f}, ||theta|| {norm:.2f}")
