"""Data-parallel multi-task training with MGDA, exact on several processes.

    torchrun --standalone --nproc-per-node 2 examples/data_parallel.py

Each rank takes its half of every global batch of generated data (two regression tasks
with a shared signal); polytask.backward reduces the Gramian and the losses across ranks,
so the run takes the steps one process would take on the whole batches. Rank 0 prints.
"""

import torch

import polytask
import polytask.distributed as ptd

ptd.init()
rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
torch.manual_seed(0)  # the same data and initial model on every rank
x = torch.randn(512, 6)
shared = x @ torch.randn(6)
targets = {"a": shared + 0.1 * torch.randn(512), "b": 3 * shared + x[:, 0]}
tasks = polytask.TaskSet([polytask.Task("a", "mse"), polytask.Task("b", "mse")])
model = polytask.models.create("shared_bottom", heads={"a": 1, "b": 1}, input_dim=6,
                               trunk_dims=[32], head_dims=[])  # fmt: skip
ptd.broadcast_parameters(model)
balancer = polytask.balancers.create("mgda")
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
batch = 64
for epoch in range(5):
    for start in range(0, 512, batch):
        mine = slice(start + rank * batch // world, start + (rank + 1) * batch // world)
        out = model(x[mine])
        losses = tasks.losses(out, {t: y[mine] for t, y in targets.items()})
        result = polytask.backward(losses, balancer, features=out.features)
        ptd.average_gradients(model)
        optimizer.step()
        optimizer.zero_grad()
    if ptd.is_main():
        weights = [round(w, 3) for w in result.weights.tolist()]
        print(f"epoch {epoch}: losses {[round(v, 3) for v in losses.detached().tolist()]} "
              f"(this rank's), MGDA weights {weights} (the whole batch's)")  # fmt: skip
torch.distributed.destroy_process_group()
