"""MultiMNIST: two overlapping digits per image (Sener & Koltun, NeurIPS 2018)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from polytask.data.dataset import TensorTaskDataset
from polytask.data.mnist import load_mnist
from polytask.data.registry import register
from polytask.data.splits import DataSplits, random_partition
from polytask.tasks.task import Task

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def overlay_pairs(images: Tensor, partner: Tensor) -> Tensor:
    """Compose MultiMNIST images as in Sener & Koltun (2018).

    Image ``i`` is put at the top-left of a 36x36 canvas, image ``partner[i]`` at offset
    (6, 6) (bottom-right); where they overlap the pixel is the maximum of the two; the canvas
    is resized to 28x28 by nearest-neighbour sampling.

    Args:
        images: ``(N, 28, 28)`` uint8.
        partner: ``(N,)`` index of the right-hand digit of each image.

    Returns:
        ``(N, 28, 28)`` uint8.
    """
    n = images.shape[0]
    left = torch.zeros(n, 36, 36, dtype=torch.uint8)
    right = torch.zeros(n, 36, 36, dtype=torch.uint8)
    left[:, :28, :28] = images
    right[:, 6:34, 6:34] = images[partner]
    canvas = torch.maximum(left, right).unsqueeze(1).float()
    return F.interpolate(canvas, size=(28, 28), mode="nearest").squeeze(1).to(torch.uint8)


def build(images: Tensor, labels: Tensor, seed: int, name: str) -> TensorTaskDataset:
    """A MultiMNIST dataset from MNIST ``images``/``labels``: each image paired with a random
    partner (seeded); tasks ``left`` and ``right`` are the two digits' classes. Inputs are
    ``(N, 1, 28, 28)`` float, standardised with MNIST's mean and std."""
    generator = torch.Generator().manual_seed(seed)
    partner = torch.randint(0, images.shape[0], (images.shape[0],), generator=generator)
    composed = overlay_pairs(images, partner)
    inputs = ((composed.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    targets = {"left": labels.long(), "right": labels[partner].long()}
    return TensorTaskDataset(inputs, targets, name=name)


@register("multi_mnist")
def multi_mnist(
    root: str | Path | None = None,
    train_size: int | None = None,
    val_size: int = 10_000,
    test_size: int | None = None,
    seed: int = 0,
) -> DataSplits:
    """MultiMNIST (Sener & Koltun 2018): classify the top-left and the bottom-right digit.

    Built from MNIST's files in ``<root or POLYTASK_DATA>/mnist/`` (downloaded with a checksum
    when absent). Validation rows are held out of MNIST-train (never from test); the test
    split is built from MNIST-test. Pairings are seeded.

    Args:
        root: folder holding ``mnist/`` (default: ``$POLYTASK_DATA``, then the cache).
        train_size: training rows (default: all 50,000 left after validation).
        val_size: validation rows taken from MNIST-train (10,000).
        test_size: test rows (default: all 10,000).
        seed: seed of the pairings and of the train/validation partition.
    """
    arrays = load_mnist(root)
    n_train = arrays["train_images"].shape[0]
    if train_size is None:
        train_size = n_train - val_size
    if train_size < 1 or val_size < 1:
        raise ValueError("train_size and val_size must be >= 1")
    train_idx, val_idx = random_partition(n_train, [train_size, val_size], seed)
    n_test = arrays["test_images"].shape[0]
    test_idx = torch.arange(min(test_size or n_test, n_test))
    images, labels = arrays["train_images"], arrays["train_labels"]
    train = build(images[train_idx], labels[train_idx], seed, "multi_mnist/train")
    val = build(images[val_idx], labels[val_idx], seed + 1, "multi_mnist/val")
    test = build(
        arrays["test_images"][test_idx],
        arrays["test_labels"][test_idx],
        seed + 2,
        "multi_mnist/test",
    )
    tasks = [
        Task("left", "ce", metrics=("accuracy",), num_classes=10),
        Task("right", "ce", metrics=("accuracy",), num_classes=10),
    ]
    return DataSplits(
        train,
        val,
        test,
        tasks,
        (1, 28, 28),
        {
            "dataset": "multi_mnist",
            "construction": "Sener & Koltun 2018: 36x36 canvas, offset (6, 6), max, nearest "
            "resize to 28x28",
            "seed": seed,
            "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        },
    )
