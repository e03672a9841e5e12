"""Target scaling on a regression task: the loss sees standardised targets, metrics and
predictions are in the target's own units (checked by hand computation)."""

from __future__ import annotations

import pytest
import torch

from polytask.tasks import Task, TaskSet


def test_loss_compares_prediction_with_standardised_target() -> None:
    tasks = TaskSet([Task("price", "mse", target_scale=(100.0, 20.0))])
    pred = torch.tensor([0.5, -1.0, 2.0])
    target = torch.tensor([110.0, 60.0, float("nan")])  # the last row is unlabelled
    losses = tasks.losses({"price": pred}, {"price": target})
    by_hand = ((0.5 - 0.5) ** 2 + (-1.0 - (-2.0)) ** 2) / 2
    assert float(losses["price"]) == pytest.approx(by_hand)


def test_metrics_are_in_original_units() -> None:
    tasks = TaskSet([Task("price", "mse", metrics=("mse", "mae"), target_scale=(100.0, 20.0))])
    metrics = tasks.make_metrics()
    pred = torch.tensor([0.5, -1.0])  # 110 and 80 in original units
    target = torch.tensor([120.0, 60.0])
    tasks.update_metrics(metrics, {"price": pred}, {"price": target})
    assert float(metrics["price"]["mse"].compute()) == pytest.approx((10.0**2 + 20.0**2) / 2)
    assert float(metrics["price"]["mae"].compute()) == pytest.approx(15.0)


def test_unscale_maps_predictions_to_original_units() -> None:
    task = Task("price", "mse", target_scale=(100.0, 20.0))
    assert task.unscale(torch.tensor([0.0, 1.5])).tolist() == [100.0, 130.0]
    assert Task("plain", "mse").unscale(torch.tensor([2.0])).tolist() == [2.0]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"loss": "bce", "target_scale": (0.0, 1.0)}, "regression"),
        ({"loss": "mse", "target_scale": (0.0, 0.0)}, "positive"),
        ({"loss": "mse", "target_scale": (float("nan"), 1.0)}, "finite"),
        ({"loss": "mse", "target_scale": (1.0,)}, "(mean, std)"),
    ],
)
def test_bad_target_scale_is_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=r"target_scale") as info:
        Task("y", **kwargs)  # type: ignore[arg-type]
    assert words in str(info.value)


def test_target_scale_from_yaml_lists_round_trips() -> None:
    assert Task("y", "mse", target_scale=[1, 2]).target_scale == (1.0, 2.0)  # type: ignore[arg-type]
