"""One process of tests/test_distributed_exact.py (run as a script, not collected): three
steps of every balancer that polytask.distributed makes exact, at each level it supports
(the parameter level with the Jacobian through the features, and without), on a
shared-bottom model
in float64, with labels missing (a task absent from one rank's shard; under MODE=average
also a task absent from the whole batch). WORLD=1: one process on the whole batch, the
reference; WORLD=2: this rank's half of every batch, gradients averaged by
polytask.distributed.average_gradients (MODE=average) or by DDP (MODE=ddp). Prints
{"balancer@level": final parameters} as JSON."""

import json
import os

import torch
import torch.distributed as dist

import polytask
import polytask.distributed as ptd
from polytask.balancers.registry import available
from polytask.gradients.distributed_guard import exact_with_reduction
from polytask.testing.check import factory

WORLD, RANK = int(os.environ["WORLD"]), int(os.environ.get("RANK", "0"))
MODE = os.environ.get("MODE", "average")
if WORLD > 1:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['PORT']}",
                            rank=RANK, world_size=WORLD)  # fmt: skip
    ptd.enable()
torch.set_default_dtype(torch.float64)
tasks = polytask.TaskSet([polytask.Task(n, "mse") for n in "abc"])
g = torch.Generator().manual_seed(1)
B = 8
batches = [
    (torch.randn(B, 5, generator=g),
     {n: torch.randn(B, generator=g) * s for n, s in zip("abc", (1.0, 10.0, 0.1), strict=True)})
    for _ in range(3)
]  # fmt: skip
rows = torch.arange(B)
# Step 0: c labelled on rows 0-2 only (absent from rank 1's half); step 1: b labelled on
# row 1 only (MODE=ddp: DDP needs every head used in every step) or nowhere (absent from
# the whole batch); step 2: a on a random half.
masks = [
    {"a": rows >= 0, "b": torch.rand(B, generator=g) > 0.3, "c": rows < 3},
    {"a": rows >= 0, "b": rows == 1 if MODE == "ddp" else rows < 0, "c": rows >= 2},
    {"a": torch.rand(B, generator=g) > 0.5, "b": rows >= 0, "c": rows >= 0},
]
mine = slice(RANK * B // WORLD, (RANK + 1) * B // WORLD)
out = {}
for name in available():
    make = factory(name)
    if not exact_with_reduction(make(3)):
        continue
    levels = ["losses"] if make(3).needs == "losses" else [*make(3).levels]
    if "parameter" in levels:
        levels.append("parameter-through-features")
    for level in levels:
        balancer = make(3)
        torch.manual_seed(0)
        model = polytask.models.create("shared_bottom", heads=dict.fromkeys("abc", 1),
                                       input_dim=5, trunk_dims=[8], head_dims=[])  # fmt: skip
        ptd.broadcast_parameters(model)
        optimizer = torch.optim.Adam([*model.parameters(), *balancer.parameters()], lr=0.05)
        ddp = MODE == "ddp" and WORLD > 1
        net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
        for (x, y), mask in zip(batches, masks, strict=True):
            outputs = net(x[mine])
            losses = tasks.losses(outputs, {k: v[mine] for k, v in y.items()},
                                  {k: v[mine] for k, v in mask.items()})  # fmt: skip
            where = {}
            if level != "parameter":
                where["features"] = outputs.features
            if level.startswith("parameter"):
                where["shared_params"] = list(model.shared_parameters())
            polytask.backward(losses, balancer, **where)
            if not ddp:
                ptd.average_gradients(model)
            ptd.average_gradients(balancer)  # learnt weights: DDP does not see them
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        trained = [*model.parameters(), *balancer.parameters()]
        out[f"{name}@{level}"] = torch.cat([p.detach().flatten() for p in trained]).tolist()
print(json.dumps(out))
if WORLD > 1:
    dist.destroy_process_group()
