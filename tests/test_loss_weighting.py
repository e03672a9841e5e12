"""Loss-weighting methods: hand-derived values, invariances and state round trips."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import polytask
from polytask.balancers import create
from polytask.balancers.initial_loss import label_prior_loss
from polytask.training import build_optimizer

from .conftest import regression_problem

NAMES = ["a", "b", "c"]


def bound(name: str, **options):
    balancer = create(name, **options)
    balancer.bind(NAMES)
    return balancer


def step_weights(balancer, *loss_vectors):
    return [balancer.loss_weights(torch.tensor(v, dtype=torch.float64)) for v in loss_vectors]


def test_initial_loss_uses_warmup_mean() -> None:
    b = bound("initial_loss", warmup_steps=2)
    w1, w2, w3 = step_weights(b, [1.0, 2.0, 4.0], [3.0, 2.0, 8.0], [100.0, 1.0, 1.0])
    torch.testing.assert_close(w1, 1 / (3 * torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)))
    initial = torch.tensor([2.0, 2.0, 6.0], dtype=torch.float64)
    torch.testing.assert_close(w2, 1 / (3 * initial))
    torch.testing.assert_close(w3, 1 / (3 * initial))  # frozen after the warm-up


def test_prior_loss_from_label_statistics() -> None:
    labels = torch.tensor([0, 0, 1, 2])  # p = (1/2, 1/4, 1/4)
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert label_prior_loss(labels, "multiclass") == pytest.approx(entropy)
    values = torch.tensor([1.0, 3.0, float("nan"), 5.0])  # variance of (1, 3, 5) = 8/3
    assert label_prior_loss(values, "regression") == pytest.approx(8 / 3)
    b = bound("prior_loss", priors={"a": 2.0, "b": 0.5, "c": 1.0})
    (w,) = step_weights(b, [9.0, 9.0, 9.0])
    torch.testing.assert_close(w, torch.tensor([1 / 6, 2 / 3, 1 / 3], dtype=torch.float64))
    with pytest.raises(KeyError, match=r"priors has no entry for task\(s\) \['c'\]"):
        create("prior_loss", priors={"a": 1.0, "b": 1.0}).bind(NAMES)


@pytest.mark.parametrize("name", ["realtime_loss", "db_mtl"])
def test_log_like_weightings_are_inverse_losses(name: str) -> None:
    (w,) = step_weights(bound(name), [0.5, 2.0, 4.0])
    torch.testing.assert_close(
        w, 1 / (3 * torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)), rtol=1e-7, atol=0
    )


def _update(name: str, scale: float, level: str | None = None, **options) -> list[torch.Tensor]:
    model, tasks, x, y = regression_problem(T=3, seed=2)
    balancer = create(name, **options)
    out = model(x)
    losses = dict(tasks.losses(out, y))
    losses["t1"] = losses["t1"] * scale
    kwargs = {}
    if level == "representation":
        kwargs = {"features": out.features}
    polytask.backward(losses, balancer, **kwargs)
    return [p.grad.clone() for p in model.shared_parameters()]


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("realtime_loss", None),
        ("db_mtl", None),
        ("initial_loss", None),
        ("gradient_norm", "representation"),
    ],
)
def test_scale_invariant_methods_ignore_a_loss_scale(name: str, level: str | None) -> None:
    for got, want in zip(_update(name, 1000.0, level), _update(name, 1.0, level), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_equal_weighting_is_not_scale_invariant() -> None:
    a, b = _update("equal", 1000.0), _update("equal", 1.0)
    assert not torch.allclose(a[0], b[0])


def test_gradient_norm_gives_unit_gradients() -> None:
    J = torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=torch.float64)
    w = create("gradient_norm").gramian_weights(J @ J.T, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(w, torch.tensor([1 / 10, 1 / 4], dtype=torch.float64))


def test_uncertainty_objective_and_optimizer_group() -> None:
    balancer = create("uncertainty", num_tasks=3, init_log_variance=0.5)
    balancer.bind(NAMES)
    losses = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    objective = balancer.objective(losses, balancer.loss_weights(losses.detach()))
    s = 0.5
    expected = sum(math.exp(-s) * v / 2 + s / 2 for v in (1.0, 2.0, 3.0)) / 3
    assert objective.item() == pytest.approx(expected)
    objective.backward()
    # d/ds [e^-s L / 2 + s / 2] / 3 = (1 - e^-s L) / 6
    want = torch.tensor([(1 - math.exp(-s) * v) / 6 for v in (1.0, 2.0, 3.0)])
    torch.testing.assert_close(balancer.log_variance.grad, want)
    model = polytask.models.create("shared_bottom", heads={"a": 1}, input_dim=2)
    optimizer = build_optimizer("adam", model, balancer.parameters(), weight_decay=0.1)
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
    assert optimizer.param_groups[1]["params"][0] is balancer.log_variance


def test_imtl_l_equalises_scaled_losses() -> None:
    balancer = create("imtl_l", num_tasks=2)
    balancer.bind(["a", "b"])
    losses = torch.tensor([0.5, 4.0])
    optimizer = torch.optim.SGD(balancer.parameters(), lr=0.1)
    for _ in range(2000):
        optimizer.zero_grad()
        balancer.objective(losses, balancer.loss_weights(losses)).backward()
        optimizer.step()
    scaled = torch.exp(balancer.log_scale.detach()) * losses
    torch.testing.assert_close(scaled, torch.ones(2), rtol=1e-3, atol=1e-3)


def test_lbtw_formula() -> None:
    b = bound("lbtw", alpha=0.5)
    w1, w2 = step_weights(b, [4.0, 1.0, 2.0], [1.0, 1.0, 0.5])
    torch.testing.assert_close(w1, torch.full((3,), 1 / 3, dtype=torch.float64))
    torch.testing.assert_close(w2, torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64) / 3)


def test_dwa_by_period() -> None:
    b = bound("dwa", temperature=2.0, period=2)
    weights = step_weights(
        b, [4.0, 4.0, 4.0], [4.0, 4.0, 4.0], [2.0, 4.0, 1.0], [2.0, 4.0, 1.0], [9.0, 9.0, 9.0]
    )
    for w in weights[:4]:
        torch.testing.assert_close(w, torch.full((3,), 1 / 3, dtype=torch.float64))
    ratio = torch.tensor([0.5, 1.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(weights[4], torch.softmax(ratio / 2.0, 0))
    per_epoch = bound("dwa")
    step_weights(per_epoch, [1.0, 1.0, 1.0])
    per_epoch.epoch_end()
    step_weights(per_epoch, [0.5, 1.0, 2.0])
    per_epoch.epoch_end()
    (w,) = step_weights(per_epoch, [1.0, 1.0, 1.0])
    torch.testing.assert_close(w, torch.softmax(torch.tensor([0.5, 1.0, 2.0]) / 2.0, 0).double())


def test_dtp_focal_weights() -> None:
    b = bound("dtp", alpha=1.0, gamma=2.0)
    (w,) = step_weights(b, [math.log(2), math.log(4), math.log(1.25)])  # kappa = .5, .25, .8
    kappa = torch.tensor([0.5, 0.25, 0.8], dtype=torch.float64)
    torch.testing.assert_close(w, -((1 - kappa) ** 2) * kappa.log() / 3)
    assert w[1] > w[0] > w[2]  # the hardest task gets the most weight
    by_metric = bound("dtp", kpi="metric", metrics=dict.fromkeys(NAMES, "accuracy"), alpha=1.0)
    (before,) = step_weights(by_metric, [1.0, 1.0, 1.0])
    torch.testing.assert_close(before, torch.full((3,), 1 / 3, dtype=torch.float64))
    by_metric.observe_metrics(
        {n: {"accuracy": v} for n, v in zip(NAMES, [0.5, 0.25, 0.8], strict=True)}
    )
    (after,) = step_weights(by_metric, [1.0, 1.0, 1.0])
    torch.testing.assert_close(after, -(1 - kappa) * kappa.log() / 3)


def test_rlw_weights_on_the_simplex_and_seeded() -> None:
    a, b = bound("rlw", seed=4), bound("rlw", seed=4)
    ones = [[1.0] * 3] * 5
    for wa, wb in zip(step_weights(a, *ones), step_weights(b, *ones), strict=True):
        torch.testing.assert_close(wa, wb)
        assert wa.sum().item() == pytest.approx(1.0) and (wa > 0).all()


def test_famo_weights_and_logit_update() -> None:
    b = bound("famo", beta=0.1, gamma=0.0)
    (w1,) = step_weights(b, [1.0, 2.0, 4.0])
    inv = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    torch.testing.assert_close(w1, inv / inv.sum())  # z uniform: w = (1/l) / sum(1/l)
    assert w1.sum().item() == pytest.approx(1.0)
    # Task a's loss halves, b stays, c doubles: logits move towards c (slowest), away from a.
    step_weights(b, [0.5, 2.0, 8.0])
    logits = b.logits.detach()
    assert logits[2] > logits[1] > logits[0]


def test_famo_shifts_losses_by_their_lower_bounds() -> None:
    b = bound("famo", min_losses=[0.5, 0.0, 1.0])
    (w,) = step_weights(b, [1.0, 2.0, 4.0])
    inv = 1 / torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)  # 1 / (L - m), z uniform
    torch.testing.assert_close(w, inv / inv.sum())


def test_famo_logits_follow_torch_adam() -> None:
    """The written-out Adam step on the logits equals torch.optim.Adam (with weight decay)
    driven by autograd through the softmax, as in the paper's code."""
    b = bound("famo", beta=0.05, gamma=0.01)
    logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([logits], lr=0.05, weight_decay=0.01)
    g = torch.Generator().manual_seed(3)
    sequence = [torch.rand(3, generator=g, dtype=torch.float64) + 0.1 for _ in range(12)]
    for previous, current in itertools.pairwise(sequence):
        if previous is sequence[0]:
            b.loss_weights(previous)
        weights = b.loss_weights(current)
        delta = (previous + 1e-8).log() - (current + 1e-8).log()
        adam.zero_grad()
        torch.softmax(logits, dim=0).backward(delta)
        adam.step()
        torch.testing.assert_close(b.logits, logits.detach(), rtol=1e-10, atol=1e-12)
        z = torch.softmax(logits.detach(), dim=0) / (current + 1e-8)
        torch.testing.assert_close(weights, z / z.sum())
    # A checkpoint of the older format (torch.optim.Adam's state) continues identically.
    old = create("famo", beta=0.05, gamma=0.01)
    old.set_extra_state(
        {"task_names": ["a", "b", "c"], "logits": logits.detach().clone(),
         "adam": adam.state_dict(), "previous": sequence[-1] + 1e-8}
    )  # fmt: skip
    following = torch.tensor([0.3, 0.9, 0.5], dtype=torch.float64)
    torch.testing.assert_close(old.loss_weights(following), b.loss_weights(following))


def test_gradnorm_hand_step() -> None:
    b = create("gradnorm", alpha=1.0, lr=0.1)
    b.bind(["a", "b"])
    G = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))  # norms 2 and 1
    first = b.gramian_weights(G, torch.tensor([1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(first, torch.full((2,), 0.5, dtype=torch.float64))
    # G_k = (2, 1), Gbar = 1.5, r = (1, 1): grad = sign(G - 1.5) * norms = (2, -1);
    # w = (1, 1) - 0.1 (2, -1) = (0.8, 1.1), renormalised to sum 2: (0.8, 1.1) * 2 / 1.9.
    second = b.gramian_weights(G, torch.tensor([1.0, 1.0], dtype=torch.float64))
    want = torch.tensor([0.8, 1.1], dtype=torch.float64) * 2 / 1.9 / 2
    torch.testing.assert_close(second, want)


STATEFUL = [
    ("initial_loss", {"warmup_steps": 3}),
    ("lbtw", {}),
    ("dwa", {"period": 2}),
    ("dtp", {}),
    ("rlw", {"seed": 1}),
    ("famo", {}),
]


@pytest.mark.parametrize(("name", "options"), STATEFUL)
def test_state_dict_round_trip_continues_identically(name: str, options: dict) -> None:
    g = torch.Generator().manual_seed(0)
    sequence = [torch.rand(3, generator=g, dtype=torch.float64) + 0.1 for _ in range(8)]
    a = bound(name, **options)
    for losses in sequence[:4]:
        a.loss_weights(losses)
    b = create(name, **options)
    b.load_state_dict(a.state_dict())
    for losses in sequence[4:]:
        torch.testing.assert_close(a.loss_weights(losses), b.loss_weights(losses))


def test_gradnorm_state_round_trip() -> None:
    G = torch.tensor([[4.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    a = create("gradnorm")
    a.bind(["a", "b"])
    for v in (1.0, 0.8):
        a.gramian_weights(G, torch.tensor([v, 1.0], dtype=torch.float64))
    b = create("gradnorm")
    b.load_state_dict(a.state_dict())
    for v in (0.5, 0.3):
        losses = torch.tensor([v, 1.0], dtype=torch.float64)
        torch.testing.assert_close(a.gramian_weights(G, losses), b.gramian_weights(G, losses))
