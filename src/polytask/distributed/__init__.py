"""Data-parallel training with any balancer (loss weightings, Gramian and Jacobian
methods) at either level, exact: ``W`` ranks on a global batch split among them take the step
one process takes on the whole batch (see :mod:`polytask.distributed.reduction` for the
mathematics, and ``docs/distributed.md``).

Usage, in a script started by ``torchrun --nproc-per-node W``::

    import polytask.distributed as ptd

    ptd.init()                          # process group from torchrun's environment + enable()
    model = MyModel()
    ptd.broadcast_parameters(model)     # every rank starts from rank 0's weights
    for x, y in shard_of_each_batch:
        out = model(x)
        polytask.backward(tasks.losses(out, y), balancer, features=out.features)
        ptd.average_gradients(model)    # or wrap the model in DDP, which averages them
        ptd.average_gradients(balancer) # learnt weights (uncertainty, ...): DDP does not see them
        optimizer.step(); optimizer.zero_grad()

The one rule with DDP: wrap the model (``DDP(model)``) and call :func:`polytask.backward`
as usual; do not call :func:`average_gradients` as well (the gradients would be averaged
twice, which is harmless but wasted). Without :func:`enable`, :func:`polytask.backward`
refuses a batch-dependent method on several ranks rather than silently change it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from polytask.distributed.reduction import ExactReduction
from polytask.gradients import ranks

__all__ = ["ExactReduction", "average_gradients", "broadcast_parameters", "disable", "enable",
           "init", "is_main", "world_size"]  # fmt: skip


def enable() -> None:
    """Make :func:`polytask.backward` exact on the default process group's ranks (installs
    :class:`ExactReduction`); call it after ``torch.distributed.init_process_group``."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError(
            "polytask.distributed.enable() needs a process group: call "
            "torch.distributed.init_process_group first, or polytask.distributed.init()"
        )
    ranks.install(ExactReduction())


def disable() -> None:
    """Take the reductions out of the engine again (a later step on several ranks is then
    refused for batch-dependent methods)."""
    ranks.install(None)


def init(backend: str | None = None, timeout_s: float = 300.0) -> None:
    """Start the default process group from the environment ``torchrun`` sets (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; ``LOCAL_RANK`` picks the GPU), with
    ``backend`` ``nccl`` when CUDA is available and ``gloo`` otherwise, and a timeout so a
    rank that dies brings the others down instead of hanging them; then :func:`enable`."""
    missing = [
        k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"polytask.distributed.init() reads torchrun's environment, but {missing} are not "
            "set: start the script with torchrun --nproc-per-node N script.py"
        )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend or ("nccl" if cuda else "gloo"),
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    enable()


def world_size() -> int:
    """Ranks in the default process group (1 without one)."""
    from polytask.gradients.distributed_guard import world_size as size

    return size()


def is_main() -> bool:
    """Whether this is rank 0 (or the only process): the one that logs and writes."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _parameters(source: nn.Module | Iterable[Tensor]) -> list[Tensor]:
    return list(source.parameters() if isinstance(source, nn.Module) else source)


def average_gradients(source: nn.Module | Iterable[Tensor]) -> None:
    """Replace each parameter's ``.grad`` with its mean over ranks: one all-reduce per
    (device, dtype) bucket, not one per tensor. A parameter without a gradient on this rank
    counts as zeros where another rank has one; one without a gradient on every rank keeps
    ``None`` (an optimizer then skips it, as in one process)."""
    W = world_size()
    params = [p for p in _parameters(source) if p.requires_grad]
    if W <= 1 or not params:
        return
    buckets: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for p in params:
        buckets.setdefault((p.device, p.dtype), []).append(p)
    for group in buckets.values():
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in group]
        had = torch.tensor([p.grad is not None for p in group], dtype=group[0].dtype,
                           device=group[0].device)  # fmt: skip
        flat = torch.cat([torch._utils._flatten_dense_tensors(grads), had])
        torch.distributed.all_reduce(flat)
        size = flat.numel() - len(group)
        means = torch._utils._unflatten_dense_tensors(flat[:size] / W, grads)
        anywhere = (flat[size:] > 0).tolist()
        for p, mean, used in zip(group, means, anywhere, strict=True):
            if not used:
                continue
            if p.grad is None:
                p.grad = mean.clone()
            else:
                p.grad.copy_(mean)


def broadcast_parameters(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (one broadcast per tensor, once
    at the start)."""
    if world_size() <= 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if isinstance(tensor, Tensor):
                torch.distributed.broadcast(tensor, src=0)
