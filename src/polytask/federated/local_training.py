"""A client's local training: a few optimizer steps of a polytask model on its own data,
with any polytask balancer at either level, and an optional proximal term towards given
weights (FedProx, Ditto, MR-MTL)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

import polytask
from polytask.data.dataset import TensorTaskDataset
from polytask.federated.arrays import Arrays


@dataclass
class LocalConfig:
    """How a client trains between two rounds: ``steps`` SGD steps (Flower's and FedProx's
    clients use plain SGD) of batch ``batch_size`` (rows drawn at random; every row when
    the client has no more) at learning rate ``lr``, the tasks balanced by ``balancer`` at
    ``level``. With ``epochs`` a client instead makes that many passes over its rows in a
    seeded order (``ceil(rows / batch_size)`` steps each, the last batch smaller), so
    clients with more rows take more steps (FedAvg's ``E`` local epochs)."""

    steps: int = 10
    batch_size: int = 32
    lr: float = 0.01
    balancer: str = "equal"
    level: str = "representation"
    epochs: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(
                f"local training needs steps >= 0, batch_size >= 1 and lr > 0; got {self}"
            )
        if self.epochs is not None and self.epochs < 0:
            raise ValueError(f"local epochs must be >= 0, got {self.epochs}")


@dataclass
class ClientSetup:
    """What every client shares: how to build the model, the tasks and the local
    training; ``seed`` seeds each client's batches (with its index and the round)."""

    make_model: Callable[[], Any]
    tasks: polytask.TaskSet
    local: LocalConfig
    seed: int = 0

    def __post_init__(self) -> None:
        for task in self.tasks:
            if task.uses_crf:  # refused before any round, not at the first evaluation
                raise ValueError(
                    f"task {task.name!r}: federated runs score clients on predictions alone "
                    "(personal models, mixtures) and carry no CRF transitions; give the task "
                    "the 'ce' loss and a token head"
                )


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's generators seeded by ``seed`` and restore them after
    (``torch.random.fork_rng``), so that a federated round never changes the random state
    of the code that runs it."""
    cuda = torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices):
        # The CPU generator, and CUDA's only when CUDA is in use: torch.manual_seed would
        # queue a lazy CUDA seeding that records a traceback each call (a third of a
        # School round's time on a CPU machine).
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed_all(seed)
        yield


def build_model(setup: ClientSetup, offset: int = 0) -> Any:
    """``setup.make_model()`` with its initial weights drawn from seed ``setup.seed +
    offset`` (every client and the server build the same start), the caller's random state
    untouched."""
    with seeded(setup.seed + offset):
        return setup.make_model()


def train_locally(
    model: Any,
    setup: ClientSetup,
    data: TensorTaskDataset,
    seed: int,
    proximal: tuple[float, Arrays] | None = None,
    frozen: set[str] | None = None,
    steps: int | None = None,
    row_weights: torch.Tensor | None = None,
) -> dict[str, float]:
    """``setup.local.steps`` SGD steps on ``data``; returns the mean loss of each task over
    the steps. With ``proximal = (mu, reference)`` each step is a proximal-gradient step
    on ``(mu / 2) ||w - reference||^2`` for the parameters named in ``reference``: the SGD
    step on the balanced task gradient, then the term's proximal map (exact, so stable
    for any ``mu``; the term is outside the balancing: it is not a task). Parameters named
    in ``frozen`` are not updated; ``steps`` overrides ``setup.local.steps`` and
    ``setup.local.epochs`` (a straggler's fewer steps);
    ``row_weights`` ``(len(data),)`` weighs each row in every task's loss (FedEM)."""
    local = setup.local
    balancer = polytask.balancers.create(local.balancer, tasks=setup.tasks)
    optimizer = torch.optim.SGD(model.parameters(), lr=local.lr)
    generator = torch.Generator().manual_seed(seed)
    parameters = dict(model.named_parameters())
    anchors = {}
    if proximal is not None:
        device = next(model.parameters()).device
        anchors = {n: torch.as_tensor(a, device=device) for n, a in proximal[1].items()}
    sums: dict[str, torch.Tensor] = {}  # on the device: one host read at the end
    model.train()
    per_epoch = max(1, math.ceil(len(data) / local.batch_size))
    by_epoch = steps is None and local.epochs is not None
    if steps is not None:
        count = steps
    elif local.epochs is not None:
        count = local.epochs * per_epoch
    else:
        count = local.steps
    order = torch.arange(0)
    with seeded(seed):  # dropout and other draws seeded; the caller's state untouched
        for i in range(count):
            if by_epoch:  # each row once per epoch, in a seeded order
                if i % per_epoch == 0:
                    order = torch.randperm(len(data), generator=generator)
                start = (i % per_epoch) * local.batch_size
                index = order[start : start + local.batch_size]
            elif local.batch_size >= len(data):  # a batch as large as the data: all of it
                index = torch.arange(len(data))
            else:
                index = torch.randint(len(data), (local.batch_size,), generator=generator)
            batch = data.take(index)
            out = model(batch.inputs)
            weights = None if row_weights is None else row_weights[index]
            losses = setup.tasks.losses(out, batch.targets, batch.masks, row_weights=weights)
            optimizer.zero_grad()
            if local.level == "parameter":
                polytask.backward(losses, balancer, shared_params=list(model.shared_parameters()))
            else:
                polytask.backward(losses, balancer, features=out.features)
            for name in frozen or ():
                parameters[name].grad = None  # SGD leaves a parameter without a gradient alone
            optimizer.step()
            if proximal is not None and proximal[0] > 0:
                # The proximal term's step, taken exactly: argmin_w ||w - v||^2 / (2 lr) +
                # (mu / 2) ||w - a||^2 = (v + lr mu a) / (1 + lr mu), stable for any mu (an
                # explicit step diverges once lr mu > 2, as MOCHA's weights can reach).
                shrink = local.lr * proximal[0]
                with torch.no_grad():
                    for name, anchor in anchors.items():
                        if name not in (frozen or ()):
                            parameters[name].add_(anchor, alpha=shrink).div_(1 + shrink)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
    return {f"loss/{t}": float(s) / max(count, 1) for t, s in sums.items()}
