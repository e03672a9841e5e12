"""Clients for federated experiments: natural clients (each task of per-task data is a
client: School's schools, the survey's respondents, Parkinson's patients) and a Dirichlet
label skew over one table (Hsu, Qi & Brown 2019, "Measuring the effects of non-identical
data distribution for federated visual classification")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from polytask.data.dataset import TensorTaskDataset


def natural_clients(
    dataset: TensorTaskDataset, target: str = "y"
) -> tuple[list[str], list[TensorTaskDataset]]:
    """Per-task data (each row labels one task, NaN for the others, as ``school``,
    ``computer_survey`` and ``parkinsons(mode="patients")`` give it) as one client per
    task, in task order: its rows, with its label under the common name ``target`` (so
    every client trains the same one-task model). Returns the clients' names (the tasks')
    and datasets; a row labelling several tasks is an error (that is one input with several
    targets, not per-task data)."""
    names = list(dataset.targets)
    labels = torch.stack([dataset.targets[n].reshape(-1).float() for n in names], dim=1)
    labelled = ~torch.isnan(labels)
    if bool((labelled.sum(dim=1) > 1).any()):
        raise ValueError(
            f"{dataset.name}: rows label several tasks; natural clients need per-task data "
            "(each row one task)"
        )
    clients, kept = [], []
    for t, name in enumerate(names):
        rows = torch.nonzero(labelled[:, t]).reshape(-1)
        if len(rows) == 0:
            continue
        inputs = dataset.inputs
        x = {k: v[rows] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[rows]
        clients.append(TensorTaskDataset(x, {target: labels[rows, t]}, name=f"{name}"))
        kept.append(name)
    return kept, clients


def dirichlet_clients(
    dataset: TensorTaskDataset, task: str, clients: int, alpha: float, seed: int = 0
) -> list[TensorTaskDataset]:
    """``clients`` clients whose shares of each class of ``task`` are drawn from
    ``Dirichlet(alpha)``: small ``alpha`` gives each client few classes (label skew), large
    ``alpha`` nearly the same mix everywhere. Every labelled row goes to exactly one client
    (rows without a label of ``task`` are left out); all of a row's tasks travel with it,
    so clients stay multi-task. A draw that leaves a client empty is drawn again (an error
    after 100). Seeded by ``seed``."""
    return dirichlet_split_clients([dataset], task, clients, alpha, seed)[0]


def dirichlet_split_clients(
    splits: Sequence[TensorTaskDataset], task: str, clients: int, alpha: float, seed: int = 0
) -> list[list[TensorTaskDataset]]:
    """:func:`dirichlet_clients` over several splits of one data set (training, validation,
    test): the class shares are drawn once, on the first split, and every split is shared
    out by the same shares, so a client's held-out rows follow its training rows' label
    mix. Returns, per split, the clients' rows; a client left without rows in a later split
    is an error naming it."""
    if clients < 1 or not alpha > 0:
        raise ValueError(f"need clients >= 1 and alpha > 0, got {clients} and {alpha}")
    if task not in splits[0].targets:
        from polytask._registry import unknown_name_message

        raise KeyError(unknown_name_message("task", task, list(splits[0].targets)))
    g = np.random.default_rng(seed)
    classes = sorted(torch.unique(_labelled(splits[0], task)[1]).tolist())
    for _ in range(100):  # draw again until every client has a row (as Hsu et al. do)
        shares = {value: g.dirichlet(np.full(clients, alpha)) for value in classes}
        first = _share_out(splits[0], task, shares, g)
        if all(first):
            break
    else:
        raise ValueError(
            f"Dirichlet({alpha}) left a client without rows in 100 draws ({clients} clients, "
            f"{len(_labelled(splits[0], task)[1])} rows): raise alpha or lower the number of "
            "clients"
        )
    result = []
    for i, split in enumerate(splits):
        unseen = sorted(set(torch.unique(_labelled(split, task)[1]).tolist()) - set(classes))
        if unseen:
            raise ValueError(
                f"{split.name}: class(es) {unseen[:5]} of {task!r} are not in the first split, "
                "so no client has a share of them"
            )
        owners = first if i == 0 else _share_out(split, task, shares, g)
        empty = [k for k, rows in enumerate(owners) if not rows]
        if empty:
            raise ValueError(
                f"{split.name}: Dirichlet({alpha}) leaves client(s) {empty[:5]} without rows "
                f"of this split: raise alpha or lower the number of clients ({clients})"
            )
        result.append([
            split.subset(torch.tensor(sorted(rows), dtype=torch.long), name=f"client{k}")
            for k, rows in enumerate(owners)
        ])  # fmt: skip
    return result


def _labelled(dataset: TensorTaskDataset, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of ``dataset`` that label ``task`` (a boolean mask) and their labels."""
    labels = dataset.targets[task].reshape(-1)
    valid = labels >= 0 if not labels.is_floating_point() else ~torch.isnan(labels)
    return valid, labels[valid]


def _share_out(
    dataset: TensorTaskDataset, task: str, shares: dict, g: np.random.Generator
) -> list[list[int]]:
    """Each client's rows: every class's labelled rows, shuffled, cut by its shares."""
    valid, _ = _labelled(dataset, task)
    labels = dataset.targets[task].reshape(-1)
    owner_rows: list[list[int]] = [[] for _ in range(len(next(iter(shares.values()))))]
    for value, share in shares.items():
        rows = g.permutation(torch.nonzero(valid & (labels == value)).reshape(-1).numpy())
        cuts = (np.cumsum(share)[:-1] * len(rows)).astype(int)
        for k, part in enumerate(np.split(rows, cuts)):
            owner_rows[k].extend(part.tolist())
    return owner_rows
