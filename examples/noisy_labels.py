"""Learning from noisy labels with a small clean set as an auxiliary constraint
(reference text 03): the noisy loss is the main task, the clean loss must not increase.

Quick and self-contained: an MLP on synthetic 3-class data where 60% of class 2's training
labels are systematically wrong (labelled 0), and 30 clean examples. Compares training on
the noisy set alone with `primary_auxiliary` (main: noisy, auxiliary: clean) on held-out
clean accuracy.

    python examples/noisy_labels.py
"""

from __future__ import annotations

import torch

import polytask
from polytask import Task, TaskLosses, TaskSet


def data(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = torch.randint(0, 3, (n,), generator=g)
    return centers[y] + torch.randn(n, 2, generator=g), y


def run(use_clean_constraint: bool, steps: int = 300) -> float:
    g = torch.Generator().manual_seed(0)
    x_noisy, y_noisy = data(2000, g)
    # Systematic noise: 60% of class 2 is labelled as class 0.
    flip = (y_noisy == 2) & (torch.rand(2000, generator=g) < 0.6)
    y_noisy = torch.where(flip, torch.zeros_like(y_noisy), y_noisy)
    x_clean, y_clean = data(30, g)
    x_test, y_test = data(2000, g)
    torch.manual_seed(0)
    model = polytask.models.create("shared_bottom", heads={"y": 3}, input_dim=2, trunk_dims=(16,))
    tasks = TaskSet([Task("y", "ce", num_classes=3)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    balancer = polytask.balancers.create("primary_auxiliary")
    for _ in range(steps):
        optimizer.zero_grad()
        noisy = tasks.losses(model(x_noisy), {"y": y_noisy})["y"]
        if not use_clean_constraint:
            noisy.backward()
        else:
            clean = tasks.losses(model(x_clean), {"y": y_clean})["y"]
            losses = TaskLosses(
                {"noisy": noisy, "clean": clean}, roles={"noisy": "main", "clean": "auxiliary"}
            )
            polytask.backward(losses, balancer, shared_params=list(model.parameters()))
        optimizer.step()
    with torch.no_grad():
        return float((model(x_test).predictions["y"].argmax(1) == y_test).float().mean())


if __name__ == "__main__":
    print(f"noisy labels only:            test accuracy {run(False):.3f}")
    print(f"noisy + clean as a constraint: test accuracy {run(True):.3f}")
