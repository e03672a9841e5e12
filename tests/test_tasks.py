"""Tasks: masked losses against hand computations, non-finite handling, metrics, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from polytask import NonFiniteLossError, Task, TaskSet
from polytask.tasks import make_metric, masked_mean


def test_masked_mse_ignores_missing_labels() -> None:
    tasks = TaskSet([Task("r", "mse")])
    pred = torch.tensor([[1.0], [2.0], [5.0]], requires_grad=True)
    target = torch.tensor([0.0, 4.0, 100.0])
    mask = torch.tensor([True, True, False])
    loss = tasks.losses({"r": pred}, {"r": target}, {"r": mask})["r"]
    assert loss.item() == pytest.approx((1.0 + 4.0) / 2)
    loss.backward()
    assert pred.grad is not None and pred.grad[2].item() == 0.0


def test_nan_targets_are_missing_labels() -> None:
    tasks = TaskSet([Task("r", "l1")])
    pred = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = tasks.losses({"r": pred}, {"r": torch.tensor([0.0, float("nan"), 1.0])})["r"]
    assert loss.item() == pytest.approx((1.0 + 2.0) / 2)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[1].item() == 0.0


def test_cross_entropy_with_negative_labels_and_token_masks() -> None:
    tasks = TaskSet([Task("c", "ce", num_classes=3)])
    logits = torch.randn(4, 3)
    target = torch.tensor([0, -100, 2, 1])
    loss = tasks.losses({"c": logits}, {"c": target})["c"]
    expected = F.cross_entropy(logits, target, ignore_index=-100)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    tokens = torch.randn(2, 5, 3)
    labels = torch.randint(0, 3, (2, 5))
    row_mask = torch.tensor([True, False])
    token_loss = tasks.losses({"c": tokens}, {"c": labels}, {"c": row_mask})["c"]
    assert token_loss.item() == pytest.approx(
        F.cross_entropy(tokens[0], labels[0]).item(), rel=1e-6
    )


def test_bce_accepts_column_predictions_and_int_targets() -> None:
    tasks = TaskSet([Task("b", "bce")])
    logits = torch.tensor([[0.3], [-1.2]])
    loss = tasks.losses({"b": logits}, {"b": torch.tensor([1, 0])})["b"]
    expected = F.binary_cross_entropy_with_logits(logits.squeeze(1), torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_huber_matches_torch() -> None:
    tasks = TaskSet([Task("h", "huber")])
    pred, target = torch.tensor([0.0, 3.0]), torch.tensor([0.5, 0.0])
    loss = tasks.losses({"h": pred}, {"h": target})["h"]
    assert loss.item() == pytest.approx(F.huber_loss(pred, target).item())


def test_all_missing_gives_zero_not_nan() -> None:
    loss = masked_mean(torch.tensor([float("nan"), 2.0]), torch.tensor([False, False]))
    assert loss.item() == 0.0


def test_nan_loss_raises_naming_the_task() -> None:
    tasks = TaskSet([Task("good", "mse"), Task("bad", "mse")])
    preds = {"good": torch.zeros(2), "bad": torch.tensor([float("inf"), 0.0])}
    with pytest.raises(NonFiniteLossError, match="'bad'"):
        tasks.losses(preds, {"good": torch.zeros(2), "bad": torch.zeros(2)})


def test_nan_loss_skip_policy_warns_and_marks_skip() -> None:
    tasks = TaskSet([Task("bad", "mse")], on_nonfinite="skip")
    with pytest.warns(RuntimeWarning, match="'bad'"):
        losses = tasks.losses({"bad": torch.tensor([float("nan")])}, {"bad": torch.zeros(1)})
    assert losses.skip


@pytest.mark.parametrize(
    ("preds", "targets", "error", "match"),
    [
        ({"a": torch.zeros(3, 2)}, {"a": torch.zeros(3)}, ValueError, "shape"),
        ({"a": torch.zeros(3)}, {"b": torch.zeros(3)}, KeyError, "targets"),
        ({"aa": torch.zeros(3)}, {"a": torch.zeros(3)}, KeyError, "Did you mean 'a'"),
    ],
)
def test_bad_inputs_name_the_cause(preds, targets, error, match) -> None:
    tasks = TaskSet([Task("a", "mse")])
    with pytest.raises(error, match=match):
        tasks.losses(preds, targets)


def test_ce_with_float_targets_is_refused() -> None:
    tasks = TaskSet([Task("c", "ce", num_classes=3)])
    with pytest.raises(TypeError, match="integer class targets"):
        tasks.losses({"c": torch.zeros(2, 3)}, {"c": torch.zeros(2)})


def test_task_validation() -> None:
    with pytest.raises(KeyError, match="Did you mean 'mse'"):
        Task("x", "mes")
    with pytest.raises(ValueError, match="role"):
        Task("x", role="primary")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        TaskSet([Task("x"), Task("x")])
    with pytest.raises(ValueError, match="kind="):
        Task("x", loss=lambda p, t: (p - t).abs())


def test_metrics_directions_and_values() -> None:
    tasks = TaskSet(
        [
            Task("b", "bce", metrics=("auc", "accuracy")),
            Task("r", "mse", metrics=("mae", "r2")),
        ]
    )
    directions = tasks.directions()
    assert directions == {"b": {"auc": True, "accuracy": True}, "r": {"mae": False, "r2": True}}
    metrics = tasks.make_metrics()
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    labels = torch.tensor([1.0, 0.0, 0.0, float("nan")])  # last one unlabelled
    tasks.update_metrics(
        metrics,
        {"b": logits, "r": torch.tensor([1.0, 2.0, 3.0, 4.0])},
        {"b": labels, "r": torch.tensor([1.5, 2.0, 2.0, 0.0])},
    )
    # AUC over the 3 labelled: positive 2.0 ranks above both negatives.
    assert metrics["b"]["auc"].compute().item() == pytest.approx(1.0)
    assert metrics["b"]["accuracy"].compute().item() == pytest.approx(2 / 3)
    assert metrics["r"]["mae"].compute().item() == pytest.approx((0.5 + 0 + 1 + 4) / 4)
    assert math.isfinite(metrics["r"]["r2"].compute().item())


def test_unknown_metric_suggests() -> None:
    with pytest.raises(KeyError, match="Did you mean 'accuracy'"):
        make_metric("acuracy", "binary")


def test_detached_loss_vector_is_computed_once_and_matches() -> None:
    tasks = TaskSet([Task("a", "mse"), Task("b", "l1")])
    pred = torch.tensor([1.0, 2.0], requires_grad=True)
    losses = tasks.losses({"a": pred, "b": pred * 2}, {"a": torch.zeros(2), "b": torch.zeros(2)})
    first = losses.detached()
    assert first is losses.detached() and not first.requires_grad
    torch.testing.assert_close(first, torch.tensor([2.5, 3.0]))


def test_row_losses_are_each_rows_mean_loss_with_its_labels() -> None:
    """TaskSet.row_losses: (B, T) per-row losses (a token task averaged over the row's
    labelled tokens) and which rows are labelled; their labelled mean is TaskSet.losses."""
    import torch

    from polytask import Task, TaskSet

    tasks = TaskSet([Task("y", loss="mse"), Task("tags", loss="ce", kind="multiclass",
                                                 num_classes=3)])  # fmt: skip
    g = torch.Generator().manual_seed(0)
    pred = {"y": torch.randn(4, generator=g), "tags": torch.randn(4, 5, 3, generator=g)}
    y = torch.tensor([1.0, float("nan"), -0.5, 2.0])
    tags = torch.randint(0, 3, (4, 5), generator=g)
    tags[0, 3:] = -1  # padding
    tags[2] = -1  # a row with no tag at all
    values, labelled = tasks.row_losses(pred, {"y": y, "tags": tags})
    assert values.shape == (4, 2) and labelled.tolist() == [[True, True], [False, True],
                                                           [True, False], [True, True]]  # fmt: skip
    assert values[0, 0] == pytest.approx(float((pred["y"][0] - 1.0) ** 2))
    ce = torch.nn.functional.cross_entropy(pred["tags"][0, :3], tags[0, :3])
    assert values[0, 1] == pytest.approx(float(ce))
    assert values[1, 0] == 0 and values[2, 1] == 0  # unlabelled: 0, not NaN
    losses = tasks.losses(pred, {"y": y, "tags": tags})
    assert float(values[labelled[:, 0], 0].mean()) == pytest.approx(float(losses["y"]))


def test_row_weights_give_each_tasks_weighted_mean_over_its_labelled_rows() -> None:
    import torch

    from polytask import Task, TaskSet

    tasks = TaskSet([Task("y", loss="mse"), Task("b", loss="bce")])
    pred = {"y": torch.tensor([0.0, 1.0, 2.0, 3.0]), "b": torch.tensor([0.5, -1.0, 2.0, 0.0])}
    targets = {
        "y": torch.tensor([1.0, float("nan"), 2.5, 2.0]),
        "b": torch.tensor([1.0, 0.0, 0.0, 1.0]),
    }
    w = torch.tensor([0.5, 3.0, 1.0, 0.0])
    weighted = tasks.losses(pred, targets, row_weights=w)
    squared = torch.tensor([1.0, 0.0, 0.25, 1.0])  # row 1 has no label
    assert float(weighted["y"]) == pytest.approx(float((w * squared)[[0, 2, 3]].sum() / 1.5))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        pred["b"], targets["b"], reduction="none"
    )
    assert float(weighted["b"]) == pytest.approx(float((w * bce).sum() / w.sum()))
    plain = tasks.losses(pred, targets)
    ones = tasks.losses(pred, targets, row_weights=torch.ones(4))
    assert torch.allclose(plain.stack(), ones.stack())
    with pytest.raises(ValueError, match="row_weights"):
        tasks.losses(pred, targets, row_weights=torch.ones(3))
