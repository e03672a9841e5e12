"""The engine-free federated core against hand-derived cases: FedAvg's example-count
weighting, FedProx with mu = 0 equal to FedAvg and pulling clients towards the global model
as mu grows, FedPer's messages holding no head parameter, Local sending nothing, and
multi-task clients trained with a gradient balancer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import polytask
import polytask.federated
from polytask.data.dataset import TensorTaskDataset
from polytask.federated import (
    ClientRound,
    ClientSetup,
    FedAvg,
    FedPer,
    FedProx,
    Local,
    LocalConfig,
    run_rounds,
)
from polytask.federated.arrays import weighted_average


def clients(count: int = 3, rows: int = 64, seed: int = 0) -> list[TensorTaskDataset]:
    """Clients with two regression tasks each, their input distributions shifted (non-IID)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, generator=g)
    out = []
    for k in range(count):
        x = torch.randn(rows, 6, generator=g) + k
        targets = {"a": x @ w + 0.1 * torch.randn(rows, generator=g), "b": (x**2).mean(1)}
        out.append(TensorTaskDataset(x, targets, name=f"client{k}"))
    return out


def setup(balancer: str = "equal", level: str = "representation") -> ClientSetup:
    tasks = polytask.TaskSet([polytask.Task("a", loss="mse"), polytask.Task("b", loss="mse")])

    def make_model():
        return polytask.models.create("shared_bottom", heads={"a": 1, "b": 1}, input_dim=6,
                                      trunk_dims=[16], head_dims=[8])  # fmt: skip

    return ClientSetup(make_model, tasks, LocalConfig(steps=5, batch_size=16, lr=0.01,
                                                      balancer=balancer, level=level))  # fmt: skip


def full_loss(config: ClientSetup, arrays: dict, data: TensorTaskDataset) -> float:
    """The summed task losses of a model holding ``arrays`` on all of ``data``."""
    from polytask.federated.arrays import load_arrays

    model = config.make_model()
    load_arrays(model, arrays)
    with torch.no_grad():
        losses = config.tasks.losses(model(data.inputs), data.targets, data.masks)
    return float(sum(losses.values()))


def test_weighted_average_weights_by_example_counts() -> None:
    """(1 x [1, 2] + 3 x [4, 8]) / 4 = [3.25, 6.5]; a name only one client sends is that
    client's value."""
    a = {"w": np.array([1.0, 2.0], dtype=np.float32), "only": np.array([5.0])}
    b = {"w": np.array([4.0, 8.0], dtype=np.float32)}
    mean = weighted_average([(a, 1.0), (b, 3.0)])
    assert np.allclose(mean["w"], [3.25, 6.5]) and mean["w"].dtype == np.float32
    assert mean["only"].tolist() == [5.0]
    with pytest.raises(ValueError, match="must be > 0"):
        weighted_average([(a, 0.0)])


def test_fedavg_round_is_the_weighted_mean_of_the_clients_models() -> None:
    data = clients()
    data[1] = data[1].subset(torch.arange(16))  # fewer examples: a smaller weight
    config = setup()
    algorithm = FedAvg()
    start = algorithm.initial_arrays(config)
    replies = [
        algorithm.client_update(start, {}, ClientRound(d, config, k)) for k, d in enumerate(data)
    ]
    assert [r.num_examples for r in replies] == [64, 16, 64]
    merged = algorithm.aggregate(replies, start)
    for name in start:
        expected = sum(r.num_examples * r.arrays[name].astype(np.float64) for r in replies) / 144
        assert np.allclose(merged[name], expected, atol=1e-6)


def test_fedprox_with_mu_zero_is_fedavg_and_mu_pulls_towards_the_global_model() -> None:
    data, config = clients(), setup()
    start = FedAvg().initial_arrays(config)
    plain = FedAvg().client_update(start, {}, ClientRound(data[2], config, 7))
    zero = FedProx(mu=0.0).client_update(start, {}, ClientRound(data[2], config, 7))
    assert all(np.array_equal(plain.arrays[n], zero.arrays[n]) for n in start)

    def drift(reply) -> float:
        return float(sum(np.sum((reply.arrays[n] - start[n]) ** 2) for n in start))

    drifts = [drift(FedProx(mu=mu).client_update(start, {}, ClientRound(data[2], config, 7)))
              for mu in (0.0, 1.0, 10.0)]  # fmt: skip
    assert drifts[0] > drifts[1] > drifts[2]
    with pytest.raises(ValueError, match="mu must be >= 0"):
        FedProx(mu=-1.0)


def test_fedper_never_sends_a_head_and_keeps_each_clients_heads() -> None:
    data, config = clients(), setup()
    run = run_rounds(FedPer(), data, config, rounds=2)
    assert run.global_arrays and all(n.startswith("trunk.") for n in run.global_arrays)
    algorithm = FedPer()
    reply = algorithm.client_update(
        run.global_arrays, run.private[0], ClientRound(data[0], config, 1)
    )
    assert all(n.startswith("trunk.") for n in reply.arrays)  # what goes on the wire
    assert reply.private and all(n.startswith("towers.") for n in reply.private)
    # Each client's heads are its own: they differ between clients.
    assert not np.allclose(run.private[0]["towers.a.0.weight"], run.private[1]["towers.a.0.weight"])


def test_local_sends_nothing_and_trains_each_client_alone() -> None:
    data, config = clients(), setup()
    run = run_rounds(Local(), data, config, rounds=3)
    assert run.global_arrays == {}
    once = run_rounds(Local(), data, config, rounds=1)
    # Its own model keeps training from round to round: lower loss on its data after 3.
    assert full_loss(config, once.private[0], data[0]) > full_loss(config, run.private[0], data[0])
    alone = run_rounds(Local(), data[:1], config, rounds=3)
    assert all(np.array_equal(alone.private[0][n], run.private[0][n]) for n in run.private[0])


@pytest.mark.parametrize(
    ("balancer", "level"), [("mgda", "representation"), ("upgrad", "parameter")]
)
def test_multi_task_clients_train_with_a_gradient_balancer(balancer: str, level: str) -> None:
    data, config = clients(), setup(balancer, level)
    run = run_rounds(FedAvg(), data, config, rounds=4)
    losses = [sum(m["loss/a"] for m in round_.values()) for round_ in run.history]
    assert losses[-1] < losses[0]
    assert all(np.all(np.isfinite(a)) for a in run.global_arrays.values())


def test_ditto_global_model_is_fedavgs_and_lam_pulls_the_personal_model_to_it() -> None:
    from polytask.federated import Ditto

    data, config = clients(), setup()
    fedavg = run_rounds(FedAvg(), data, config, rounds=2)
    gaps = []
    for lam in (0.0, 10.0, 50.0):  # SGD at lr 0.01: lr * lam < 2 keeps the step stable
        ditto = run_rounds(Ditto(lam=lam), data, config, rounds=2)
        # The global model is trained exactly as FedAvg trains it.
        assert all(np.array_equal(ditto.global_arrays[n], fedavg.global_arrays[n])
                   for n in fedavg.global_arrays)  # fmt: skip
        gaps.append(sum(float(np.sum((ditto.private[0][n] - fedavg.global_arrays[n]) ** 2))
                        for n in fedavg.global_arrays))  # fmt: skip
    assert gaps[0] > gaps[1] > gaps[2]


def test_mr_mtl_with_lam_zero_is_local_training_and_lam_makes_clients_agree() -> None:
    from polytask.federated import MRMTL

    data, config = clients(), setup()
    local = run_rounds(Local(), data, config, rounds=2)
    alone = run_rounds(MRMTL(lam=0.0), data, config, rounds=2)
    assert all(np.array_equal(alone.private[1][n], local.private[1][n]) for n in local.private[1])

    def spread(run) -> float:
        names = run.private[0]
        return sum(float(np.var([p[n] for p in run.private], axis=0).sum()) for n in names)

    assert spread(run_rounds(MRMTL(lam=50.0), data, config, rounds=3)) < spread(alone)


def test_fedrep_trains_heads_with_the_trunk_frozen_and_sends_the_trunk_only() -> None:
    from polytask.federated import FedRep

    data = clients()
    config = setup()
    config.local.steps = 0  # only the head phase
    algorithm = FedRep(head_steps=5)
    start = algorithm.initial_arrays(config)
    reply = algorithm.client_update(start, {}, ClientRound(data[0], config, 3))
    assert set(reply.arrays) == set(start)  # the trunk only
    assert all(np.array_equal(reply.arrays[n], start[n]) for n in start)  # frozen
    seed_model = FedAvg().initial_arrays(config)
    assert any(not np.array_equal(reply.private[n], seed_model[n]) for n in reply.private)


def test_fedavg_plus_fine_tunes_the_global_model_on_each_client() -> None:
    from polytask.federated import FedAvgPlus, evaluate_clients

    data, config = clients(), setup()
    run = run_rounds(FedAvgPlus(finetune_steps=0), data, config, rounds=2)
    untuned = FedAvgPlus(0).personal_arrays(run.global_arrays, {}, ClientRound(data[0], config, 0))
    assert all(np.array_equal(untuned[n], run.global_arrays[n]) for n in untuned)
    plain = evaluate_clients(FedAvgPlus(0), run, data, data, config)
    tuned = evaluate_clients(FedAvgPlus(50), run, data, data, config)
    assert tuned.summary("a")["mean"] < plain.summary("a")["mean"]


def test_client_scores_summarise_the_distribution_over_clients() -> None:
    from polytask.federated import ClientScores

    scores = ClientScores([{"a": float(v)} for v in range(1, 11)], [1] * 9 + [11])
    summary = scores.summary("a")
    assert summary["mean"] == 5.5
    assert summary["weighted_mean"] == pytest.approx((45 + 110) / 20)
    assert summary["bottom_decile"] == pytest.approx(np.percentile(np.arange(1, 11), 90))


def test_rounds_sample_clients_and_stragglers_drop_or_do_fewer_steps() -> None:
    from polytask.federated.rounds import RoundConfig

    data, config = clients(count=4), setup()
    half = run_rounds(Local(), data, config, rounds=3, participation=RoundConfig(fraction=0.5))
    assert all(len(round_) == 2 for round_ in half.history)
    taken = set().union(*half.history)
    for k in range(4):  # a client never sampled keeps its empty private state
        assert bool(half.private[k]) == (k in taken)
    again = run_rounds(Local(), data, config, rounds=3, participation=RoundConfig(fraction=0.5))
    assert [sorted(r) for r in again.history] == [sorted(r) for r in half.history]  # seeded
    dropped = run_rounds(FedAvg(), data, config, rounds=1,
                         participation=RoundConfig(stragglers=0.5))  # fmt: skip
    (replied,) = dropped.history
    assert len(replied) == 2  # two of the four dropped out
    algorithm, start = FedAvg(), FedAvg().initial_arrays(config)
    replies = [algorithm.client_update(start, {}, ClientRound(data[k], config, config.seed + k))
               for k in sorted(replied)]  # fmt: skip
    expected = algorithm.aggregate(replies, start)
    assert all(np.allclose(dropped.global_arrays[n], expected[n]) for n in expected)
    with pytest.raises(ValueError, match="fraction must be in"):
        RoundConfig(fraction=0.0)


def test_fedem_e_step_is_the_posterior_over_components() -> None:
    from polytask.federated.fedem import responsibilities

    pi = torch.tensor([0.25, 0.75])
    losses = torch.tensor([[1.0, 2.0], [3.0, 0.5]])
    q = responsibilities(torch.log(pi), losses)
    first = torch.tensor([0.25 * np.exp(-1.0), 0.75 * np.exp(-2.0)], dtype=torch.float32)
    assert torch.allclose(q[0], first / first.sum())
    assert torch.allclose(q.sum(1), torch.ones(2))


def test_fedem_assigns_a_client_to_the_component_that_generated_its_data() -> None:
    """Two components; the client's targets are exactly component 0's predictions: its
    rows' losses are 0 under component 0, so the M-step puts (nearly) all its mixture
    weight there, equal to the mean of the E-step computed here by hand; the message holds
    both components; the client's mixture prediction is sum_m pi_m h_m."""
    from polytask.federated import FedEM
    from polytask.federated.arrays import load_arrays
    from polytask.federated.fedem import component_arrays

    config = setup()
    config.local.steps = 0  # the E- and M-steps alone
    algorithm = FedEM(components=2)
    start = algorithm.initial_arrays(config)
    models = []
    for m in range(2):
        model = config.make_model()
        load_arrays(model, component_arrays(start, m))
        models.append(model.eval())
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        truth = models[0](x).predictions
        other = models[1](x).predictions
    data = TensorTaskDataset(x, {"a": truth["a"].clone(), "b": truth["b"].clone()})
    reply = algorithm.client_update(start, {}, ClientRound(data, config, 0))
    wrong = ((other["a"] - truth["a"]) ** 2 + (other["b"] - truth["b"]) ** 2).numpy()
    expected = np.mean(1 / (1 + np.exp(-wrong)))  # softmax of (0, -wrong) with pi = 1/2
    assert reply.private["mixture"][0] == pytest.approx(expected, rel=1e-5)
    assert reply.private["mixture"][0] > 0.5
    assert {n.split("/")[0] for n in reply.arrays} == {"component0", "component1"}
    mixed = algorithm.personal_predictions(start, reply.private, ClientRound(data, config, 0), x)
    pi = reply.private["mixture"]
    assert torch.allclose(mixed["a"], pi[0] * truth["a"] + pi[1] * other["a"], atol=1e-6)


def test_fedem_rounds_lower_the_clients_losses() -> None:
    from polytask.federated import FedEM, evaluate_clients

    data, config = clients(), setup()
    algorithm = FedEM(components=2)
    before = evaluate_clients(algorithm, run_rounds(algorithm, data, config, rounds=0), data,
                              data, config)  # fmt: skip
    after = evaluate_clients(algorithm, run_rounds(algorithm, data, config, rounds=3), data,
                             data, config)  # fmt: skip
    assert after.summary("a")["mean"] < before.summary("a")["mean"]


def test_mocha_learns_omega_by_mtrls_step_and_its_proximal_term_is_the_regulariser() -> None:
    """After a round the server holds every client's model and Omega = omega_step(W); the
    client's proximal term (lam c/2)||w - a||^2 has the gradient of (lam/2) tr(W^T
    Omega^-1 W) with respect to its own row; MOCHA without a client index is refused."""
    from polytask.classic.task_covariance import omega_step
    from polytask.federated import MOCHA
    from polytask.federated.mocha import OMEGA, client_prefix

    data, config = clients(), setup()
    algorithm = MOCHA(lam=0.5)
    run = run_rounds(algorithm, data, config, rounds=2)
    names = sorted(n[len("client0/") :] for n in run.global_arrays if n.startswith("client0/"))

    def row(k: int) -> np.ndarray:
        return np.concatenate([run.global_arrays[client_prefix(k) + n].ravel() for n in names])

    W = np.stack([row(k) for k in range(3)]).astype(np.float64)
    assert np.allclose(run.global_arrays[OMEGA], omega_step(W, algorithm.eps))
    strength, anchor = algorithm.anchor(run.global_arrays, 1)
    inverse = np.linalg.inv(run.global_arrays[OMEGA])
    own, target = row(1), np.concatenate([anchor[n].ravel() for n in names])
    regulariser_gradient = 0.5 * (inverse @ W)[1]  # d/dw_1 of (lam/2) tr(W^T Omega^-1 W)
    assert np.allclose(strength * (own - target), regulariser_gradient, rtol=1e-4, atol=1e-6)
    assert set(run.private[2]) == set(names)
    with pytest.raises(ValueError, match="needs each client's index"):
        algorithm.client_update(run.global_arrays, {}, ClientRound(data[0], config, 0))


def test_pfedme_moreau_steps_and_the_servers_mixing() -> None:
    """With no inner step theta = w, so the Moreau step leaves w where it was: the client
    sends the global model back; the server's (1 - beta) w + beta mean(w_i) by hand; and a
    few rounds lower the personal models' losses."""
    from polytask.federated import PFedMe, evaluate_clients

    data, config = clients(), setup()
    start = PFedMe().initial_arrays(config)
    still = PFedMe(inner_steps=0).client_update(start, {}, ClientRound(data[0], config, 0))
    assert all(np.allclose(still.arrays[n], start[n]) for n in start)
    algorithm = PFedMe(lam=15.0, inner_steps=3, beta=0.5)
    replies = [
        algorithm.client_update(start, {}, ClientRound(d, config, k)) for k, d in enumerate(data)
    ]
    merged = algorithm.aggregate(replies, start)
    for n in start:
        mean = sum(r.arrays[n].astype(np.float64) for r in replies) / 3  # equal counts
        assert np.allclose(merged[n], 0.5 * start[n] + 0.5 * mean, atol=1e-6)
    before = evaluate_clients(algorithm, run_rounds(algorithm, data, config, 0), data, data, config)
    after = evaluate_clients(algorithm, run_rounds(algorithm, data, config, 3), data, data, config)
    assert after.summary("a")["mean"] < before.summary("a")["mean"]
    with pytest.raises(ValueError, match="pFedMe needs"):
        PFedMe(beta=2.0)


@pytest.mark.parametrize("name", sorted(polytask.federated.ALGORITHMS))
def test_every_algorithm_is_seeded_finite_and_survives_sampling_and_stragglers(name: str) -> None:
    """Read from the registry: two runs with one seed are bitwise equal (what an exact
    resume will rely on), with half the clients sampled and a straggler doing fewer steps;
    every array and every client's predictions are finite."""
    from polytask.federated import create, evaluate_clients
    from polytask.federated.rounds import RoundConfig

    data, config = clients(count=4), setup()
    plan = RoundConfig(fraction=0.75, stragglers=0.34, straggler_mode="fewer_steps")
    first = run_rounds(create(name), data, config, rounds=2, participation=plan)
    second = run_rounds(create(name), data, config, rounds=2, participation=plan)
    assert first.global_arrays.keys() == second.global_arrays.keys()
    assert all(np.array_equal(first.global_arrays[n], second.global_arrays[n])
               for n in first.global_arrays)  # fmt: skip
    assert all(np.all(np.isfinite(a)) for a in first.global_arrays.values())
    scores = evaluate_clients(create(name), first, data, data, config)
    assert all(np.isfinite(v) for client in scores.losses for v in client.values())


def test_an_unknown_algorithm_names_the_closest() -> None:
    from polytask.federated import create

    with pytest.raises(KeyError, match="Did you mean 'fedavg'"):
        create("fedavgg")


def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/federated.md's example, verbatim."""
    import re
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "federated.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    (snippet,) = [b for b in blocks if "components(" not in b]
    (app,) = [b for b in blocks if "components(" in b]
    example = (Path(__file__).parents[1] / "examples" / "flower_app" / "school_app.py").read_text()
    assert all(line in example for line in app.splitlines()[1:] if line)  # the app, as shipped
    namespace: dict[str, object] = {}
    exec(compile(snippet, "docs/federated.md", "exec"), namespace)
    assert "bottom_decile" in capsys.readouterr().out
    assert len(namespace["run"].history) == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(polytask.federated.ALGORITHMS))
def test_an_algorithm_leaves_the_callers_random_state_alone(name: str) -> None:
    """Models are seeded from the setup's seed without touching torch's global generator:
    a user's own random draws do not change because a federated round ran."""
    from polytask.federated import create

    data, config = clients(count=2), setup()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_rounds(create(name), data, config, rounds=1)
    assert torch.equal(torch.rand(3), expected)


def test_natural_clients_are_the_tasks_of_per_task_data_and_train_with_fedavg() -> None:
    from polytask.data.client_splits import natural_clients
    from polytask.data.splits import per_task_splits

    g = torch.Generator().manual_seed(2)
    xs = [torch.randn(30, 6, generator=g) for _ in range(4)]
    ys = [x.sum(1) + t for t, x in enumerate(xs)]
    data = per_task_splits("toy", xs, ys, ["s1", "s2", "s3", "s4"], (0.6, 0.2, 0.2), 0, {})
    names, train = natural_clients(data.train)
    assert names == ["s1", "s2", "s3", "s4"] and [len(c) for c in train] == [18] * 4
    t = 2  # client s3 holds exactly task s3's rows, its label under the common name
    rows = ~torch.isnan(data.train.targets["s3"])
    assert torch.equal(train[t].inputs, data.train.inputs[rows])
    assert torch.equal(train[t].targets["y"], data.train.targets["s3"][rows])
    tasks = polytask.TaskSet([polytask.Task("y", loss="mse")])
    config = ClientSetup(
        lambda: polytask.models.create("shared_bottom", heads={"y": 1}, input_dim=6),
        tasks, LocalConfig(steps=5, batch_size=8),
    )  # fmt: skip
    run = run_rounds(FedAvg(), train, config, rounds=2)
    assert all(np.all(np.isfinite(a)) for a in run.global_arrays.values())
    with pytest.raises(ValueError, match="rows label several tasks"):
        natural_clients(clients()[0])


def test_dirichlet_clients_partition_the_rows_with_label_skew() -> None:
    from polytask.data.client_splits import dirichlet_clients

    g = torch.Generator().manual_seed(3)
    labels = torch.arange(600) % 3
    data = TensorTaskDataset(torch.randn(600, 4, generator=g),
                             {"c": labels, "y": torch.randn(600, generator=g)})  # fmt: skip

    def skew(alpha: float) -> float:
        parts = dirichlet_clients(data, "c", clients=5, alpha=alpha, seed=0)
        assert sum(len(p) for p in parts) == 600  # every row exactly once
        rows = torch.cat([p.inputs for p in parts])
        assert len(torch.unique(rows, dim=0)) == 600
        assert all(set(p.targets) == {"c", "y"} for p in parts)  # clients stay multi-task
        shares = [torch.bincount(p.targets["c"], minlength=3).float() / max(len(p), 1)
                  for p in parts if len(p)]  # fmt: skip
        return float(torch.stack(shares).std(dim=0).mean())  # spread of class shares

    assert skew(0.05) > skew(100.0)
    with pytest.raises(ValueError, match="alpha > 0"):
        dirichlet_clients(data, "c", clients=2, alpha=0.0)


def test_a_strong_proximal_term_pins_the_model_to_its_anchor_without_diverging() -> None:
    """MOCHA's proximal weight ``lam (Omega^-1)_tt`` reaches 1e2 to 1e6 when ``Omega`` is
    near singular (measured: 48 to 244 with 12 clients, 6e5 when models start alike), so
    ``lr mu`` passes 2, where a plain gradient step on the term diverges (it did: factor
    ``1 - lr mu`` per step). The proximal step is taken exactly, ``(v + lr mu a) / (1 + lr
    mu)``: as ``mu`` grows the model goes to the anchor ``a``, finite for any ``mu``."""
    from polytask.federated.arrays import model_arrays
    from polytask.federated.local_training import build_model, train_locally

    data, config = clients(count=1), setup()
    model = build_model(config)
    anchor = {n: np.full_like(a, 0.25) for n, a in model_arrays(model).items()}
    train_locally(model, config, data[0], seed=0, proximal=(1e4, anchor))
    final = model_arrays(model)
    assert all(np.all(np.isfinite(a)) for a in final.values())
    # Each step leaves at most 1 / (1 + lr mu) = 1/101 of the gap to the anchor.
    assert max(float(np.abs(final[n] - anchor[n]).max()) for n in anchor) < 1e-3


def test_local_epochs_visit_every_row_once_per_epoch() -> None:
    """``epochs=2`` with 20 rows and batch 8: 3 steps per epoch (8, 8, 4 rows), 6 in all,
    each row twice; a straggler's fewer steps replace the epochs."""
    import dataclasses

    from polytask.federated.local_training import build_model, train_locally
    from polytask.federated.rounds import with_steps

    data = clients(count=1, rows=20)[0]
    seen: list[torch.Tensor] = []
    original = TensorTaskDataset.take

    def recording(self, index):  # type: ignore[no-untyped-def]
        seen.append(index.clone())
        return original(self, index)

    config = setup()
    config = dataclasses.replace(
        config, local=dataclasses.replace(config.local, epochs=2, batch_size=8)
    )
    TensorTaskDataset.take = recording  # type: ignore[method-assign]
    try:
        train_locally(build_model(config), config, data, seed=3)
        sizes = [len(i) for i in seen]
        rows = torch.cat(seen).sort().values
        seen.clear()
        train_locally(build_model(config), with_steps(config, 2), data, seed=3)
    finally:
        TensorTaskDataset.take = original  # type: ignore[method-assign]
    assert sizes == [8, 8, 4, 8, 8, 4]
    assert torch.equal(rows, torch.arange(20).repeat_interleave(2))
    assert len(seen) == 2
