"""The linear-chain CRF (polytask.tasks.crf) against brute-force enumeration of every
tagging in float64, and closed forms."""

from __future__ import annotations

import itertools

import pytest
import torch

from polytask.tasks import crf

C = 3


def path_score(emissions: torch.Tensor, transitions: torch.Tensor, positions: list[int],
               tags: tuple[int, ...]) -> torch.Tensor:  # fmt: skip
    A, start, end = transitions[:C], transitions[C], transitions[C + 1]
    score = start[tags[0]] + end[tags[-1]]
    for k, (i, y) in enumerate(zip(positions, tags, strict=True)):
        score = score + emissions[i, y]
        if k:
            score = score + A[tags[k - 1], y]
    return score


def taggings(emissions: torch.Tensor, transitions: torch.Tensor, real: torch.Tensor,
             allowed: torch.Tensor | None = None):  # fmt: skip
    """Every tagging of one sequence's real positions that ``allowed`` permits, with its
    score: ``[(positions, tags, score)]``."""
    positions = [i for i in range(real.shape[0]) if real[i]]
    out = []
    for tags in itertools.product(range(C), repeat=len(positions)):
        pairs = zip(positions, tags, strict=True)
        if allowed is not None and not all(allowed[i, y] for i, y in pairs):
            continue
        out.append((positions, tags, path_score(emissions, transitions, positions, tags)))
    return out


def problem(seed: int = 0, B: int = 4, L: int = 5):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(B, L, C, generator=g, dtype=torch.float64)
    transitions = torch.randn(C + 2, C, generator=g, dtype=torch.float64)
    real = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [1, 0, 0, 0, 0]],
                        dtype=torch.bool)[:B, :L]  # fmt: skip
    return emissions, transitions, real


def test_log_partition_equals_enumeration_with_padding_anywhere() -> None:
    emissions, transitions, real = problem()
    got = crf.log_partition(emissions, transitions, real)
    for b in range(real.shape[0]):
        scores = torch.stack([s for *_, s in taggings(emissions[b], transitions, real[b])])
        assert torch.allclose(got[b], torch.logsumexp(scores, 0), atol=1e-12)


def test_nll_with_missing_labels_marginalises_them() -> None:
    """Row 0 fully labelled (NLL = log Z - gold score), row 1 partly (the unlabelled
    positions summed out), row 2 not at all (NLL 0, no gradient)."""
    emissions, transitions, real = problem(seed=1, B=3)
    target = torch.tensor([[2, 0, 1, 1, 0], [1, -1, 2, -1, -1], [-1, -1, -1, -1, -1]])
    labelled = (target >= 0) & real
    emissions.requires_grad_(True)
    losses = crf.token_losses(emissions, target, labelled, transitions, real)
    for b in range(3):
        every = torch.stack([s for *_, s in taggings(emissions[b], transitions, real[b])])
        allowed = torch.ones(5, C, dtype=torch.bool)
        for i in range(5):
            if labelled[b, i]:
                allowed[i] = False
                allowed[i, target[b, i]] = True
        agree = torch.stack([s for *_, s in taggings(emissions[b], transitions, real[b], allowed)])
        nll = torch.logsumexp(every, 0) - torch.logsumexp(agree, 0)
        assert torch.allclose(losses[b].sum(), nll, atol=1e-12)
        assert (losses[b][~labelled[b]] == 0).all()
    assert losses[2].abs().sum() == 0
    losses.sum().backward()
    assert emissions.grad is not None and emissions.grad[2].abs().sum() == 0
    assert emissions.grad[0].abs().sum() > 0


def test_zero_transitions_give_per_token_cross_entropy() -> None:
    """With A, start and end zero the CRF factorises: its NLL is the sum of the tokens'
    softmax cross-entropies (a closed form independent of the forward algorithm)."""
    emissions, _, real = problem(seed=2)
    target = torch.randint(0, C, real.shape, generator=torch.Generator().manual_seed(3))
    losses = crf.token_losses(emissions, target, real, torch.zeros(C + 2, C,
                              dtype=torch.float64), real)  # fmt: skip
    ce = torch.nn.functional.cross_entropy(emissions.movedim(-1, 1), target, reduction="none")
    assert torch.allclose(losses.sum(1), (ce * real).sum(1), atol=1e-12)


def test_max_marginals_equal_enumeration_and_decode_the_best_path() -> None:
    emissions, transitions, real = problem(seed=4)
    got = crf.max_marginals(emissions, transitions, real)
    for b in range(real.shape[0]):
        every = taggings(emissions[b], transitions, real[b])
        positions = every[0][0]
        best = max(every, key=lambda t: float(t[2]))[1]
        for k, i in enumerate(positions):
            for c in range(C):
                top = max(float(s) for _, tags, s in every if tags[k] == c)
                assert got[b, i, c].item() == pytest.approx(top, abs=1e-12)
        assert tuple(got[b, positions].argmax(-1).tolist()) == best
        padded = [i for i in range(real.shape[1]) if not real[b, i]]
        assert torch.equal(got[b, padded], emissions[b, padded])


def test_padding_appended_changes_nothing() -> None:
    emissions, transitions, real = problem(seed=5)
    target = torch.randint(0, C, real.shape, generator=torch.Generator().manual_seed(6))
    longer = torch.cat([emissions, torch.randn(4, 3, C, dtype=torch.float64) * 50], 1)
    real_longer = torch.cat([real, torch.zeros(4, 3, dtype=torch.bool)], 1)
    target_longer = torch.cat([target, torch.full((4, 3), -1)], 1)
    short = crf.token_losses(emissions, target, real, transitions, real)
    long = crf.token_losses(longer, target_longer, real_longer & (target_longer >= 0),
                            transitions, real_longer)  # fmt: skip
    assert torch.allclose(short, long[:, :5], atol=1e-12) and (long[:, 5:] == 0).all()
    decoded = crf.max_marginals(longer, transitions, real_longer)[:, :5]
    assert torch.allclose(decoded, crf.max_marginals(emissions, transitions, real), atol=1e-12)


def test_gradients_of_the_forward_algorithm() -> None:
    emissions, transitions, real = problem(seed=7, B=3, L=4)
    emissions.requires_grad_(True)
    transitions.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e, t: crf.log_partition(e, t, real[:, :4]), (emissions, transitions)
    )


def test_bad_shapes_are_named() -> None:
    emissions, transitions, real = problem()
    with pytest.raises(ValueError, match=r"shape \(C \+ 2, C\)"):
        crf.log_partition(emissions, transitions[:C], real)
    with pytest.raises(ValueError, match="for 4 tags, the logits have 3"):
        crf.log_partition(emissions, torch.zeros(6, 4), real)


# --- the CRF head under polytask's models, losses, engine and decoding -------------------

TAGS = ["O", "B-x", "I-x"]


def tagging_problem(n: int = 48, L: int = 6, seed: int = 0):
    """Token ids 1..5 (0 is padding) tagged B-x on a 5 and I-x on the tokens after a 5 up to
    the next 1 (so I-x follows B-x or I-x, never O); sequences of 3..L real tokens; an intent
    (whether the sequence has a 5)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 6, (n, L), generator=g)
    lengths = torch.randint(3, L + 1, (n,), generator=g)
    tags = torch.full((n, L), -1)
    for b in range(n):
        inside = False
        for i in range(int(lengths[b])):
            t = int(tokens[b, i])
            if t == 5:
                tags[b, i], inside = 1, True
            elif t == 1:
                tags[b, i], inside = 0, False
            else:
                tags[b, i] = 2 if inside else 0
        tokens[b, int(lengths[b]) :] = 0
    intent = (tags == 1).any(1).long()
    return tokens, {"intent": intent, "slots": tags}


def crf_model_and_tasks(head: str = "crf", loss: str = "crf"):
    import polytask

    torch.manual_seed(0)
    model = polytask.models.create("bilstm", heads={"intent": 2, "slots": 3}, vocab_size=6,
                                   head_types={"slots": head}, embed_dim=16, hidden=16,
                                   dropout=0.0)  # fmt: skip
    tasks = polytask.TaskSet([
        polytask.Task("intent", "ce", metrics=["accuracy"], num_classes=2),
        polytask.Task("slots", loss, metrics=["span_f1", "accuracy"], num_classes=3,
                      labels=TAGS),
    ])  # fmt: skip
    return model, tasks


def test_a_bilstm_crf_learns_the_tag_grammar_and_decodes_with_it() -> None:
    """Trained through polytask.backward (UPGrad): the loss falls, the transitions learn
    that I-x never follows O, and readable() / the metrics decode with the model's own
    transitions (its argmax is the brute-force best path of the model's scores)."""
    import polytask

    tokens, targets = tagging_problem()
    model, tasks = crf_model_and_tasks()
    balancer = polytask.balancers.create("upgrad")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(60):
        out = model(tokens)
        losses = tasks.losses(out, targets)
        first = first if first is not None else losses.detached().tolist()
        polytask.backward(losses, balancer, features=out.features)
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        out = model(tokens)
    last = tasks.losses(out, targets).detached().tolist()
    assert last[1] < 0.1 * first[1]
    A = out.transitions["slots"].detach()
    # O -> I-x, never seen: below O -> B-x (out of O) and below B-x -> I-x (into I-x)
    assert A[0, 2] < A[0, 1] - 0.2 and A[0, 2] < A[1, 2] - 0.2
    decoded = tasks.readable(out)["slots"].argmax(-1)
    real = tokens != 0
    for b in range(4):
        emissions = out.predictions["slots"][b].double()
        every = taggings(emissions, A.double(), real[b])
        best = max(every, key=lambda t: float(t[2]))[1]
        assert tuple(decoded[b, real[b]].tolist()) == best
    metrics = tasks.make_metrics()
    tasks.update_metrics(metrics, out, targets)
    assert float(metrics["slots"]["span_f1"].compute()) == 1.0


def test_padding_appended_to_the_batch_changes_no_crf_loss() -> None:
    tokens, targets = tagging_problem(n=8)
    model, tasks = crf_model_and_tasks()
    model.eval()
    padded = torch.cat([tokens, torch.zeros(8, 4, dtype=torch.long)], 1)
    padded_targets = {**targets, "slots": torch.cat([targets["slots"], torch.full((8, 4), -1)], 1)}
    with torch.no_grad():
        short = tasks.losses(model(tokens), targets).detached()
        long = tasks.losses(model(padded), padded_targets).detached()
    assert torch.allclose(short, long, atol=1e-6)


def test_the_engine_trains_the_transitions_at_both_levels() -> None:
    """Equal weighting through polytask.backward gives the gradient of the mean loss, the
    transitions' included; UPGrad at the parameter level reaches them too."""
    import polytask

    tokens, targets = tagging_problem(n=16)
    model, tasks = crf_model_and_tasks()
    out = model(tokens)
    tasks.losses(out, targets).stack().mean().backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    out = model(tokens)
    polytask.backward(tasks.losses(out, targets), polytask.balancers.create("equal"),
                      features=out.features)  # fmt: skip
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.allclose(parameter.grad, reference[name], atol=1e-6), name
    assert reference["heads.slots.transitions"].abs().sum() > 0
    model.zero_grad()
    out = model(tokens)
    polytask.backward(tasks.losses(out, targets), polytask.balancers.create("upgrad"),
                      shared_params=model.shared_parameters())  # fmt: skip
    assert model.heads["slots"].transitions.grad.abs().sum() > 0


def test_a_crf_loss_and_a_crf_head_come_together() -> None:
    tokens, targets = tagging_problem(n=4)
    model, tasks = crf_model_and_tasks(head="token")
    with pytest.raises(ValueError, match=r"loss 'crf' reads the transitions of a CRF head.*"
                       r"head_types=\{'slots': 'crf'\}"):  # fmt: skip
        tasks.losses(model(tokens), targets)
    model, tasks = crf_model_and_tasks(loss="ce")
    with pytest.raises(ValueError, match=r"returns CRF transitions for it, but its loss is "
                       r"'ce'.*tasks.slots.loss=crf"):  # fmt: skip
        tasks.losses(model(tokens), targets)
    model, tasks = crf_model_and_tasks()
    with pytest.raises(ValueError, match=r"model\.options\.head_types\.slots=crf.*not a dict"):
        tasks.losses(model(tokens).predictions, targets)


def test_a_trained_crf_run_is_scored_and_loaded_with_viterbi(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The Trainer's evaluation scores the decoded tags (span F1 of the max-marginals'
    argmax), and load_run(...).predict returns the same max-marginal scores."""
    import polytask
    from polytask.data import TensorTaskDataset
    from polytask.training import Trainer, TrainerConfig
    from polytask.training.evaluation import evaluate

    tokens, targets = tagging_problem(n=64)
    data = TensorTaskDataset(tokens, targets)
    model, tasks = crf_model_and_tasks()
    balancer = polytask.balancers.create("equal")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    config = TrainerConfig(epochs=4, batch_size=16, progress=False, run_dir=str(tmp_path))
    Trainer(model, tasks, balancer, optimizer, None, config).fit(data, data)
    run = polytask.load_run(tmp_path, model=crf_model_and_tasks()[0])
    with torch.no_grad():
        out = run.model.eval()(tokens)
    decoded = crf.max_marginals(out.predictions["slots"], out.transitions["slots"],
                                out.extras["mask"])  # fmt: skip
    torch.testing.assert_close(run.predict(tokens)["slots"], decoded)
    model.eval()
    with torch.no_grad():  # transitions that make Viterbi differ from per-token argmax
        model.heads["slots"].transitions.add_(
            3 * torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
        )
        out = model(tokens)
    expected = crf.max_marginals(out.predictions["slots"], out.transitions["slots"],
                                 out.extras["mask"])  # fmt: skip
    real = out.extras["mask"]
    assert (expected.argmax(-1) != out.predictions["slots"].argmax(-1))[real].any()
    metric = polytask.tasks.make_metric("span_f1", "multiclass", 3, TAGS)
    metric.update(expected.argmax(-1), targets["slots"])
    scored = evaluate(model, tasks, data, torch.device("cpu"), batch_size=64)
    assert scored["metrics"]["slots"]["span_f1"] == pytest.approx(float(metric.compute()))


def test_a_federated_run_refuses_a_crf_task_before_any_round() -> None:
    from polytask.federated.local_training import ClientSetup, LocalConfig

    model, tasks = crf_model_and_tasks()
    with pytest.raises(ValueError, match=r"task 'slots': federated runs .* no CRF transitions"):
        ClientSetup(lambda: model, tasks, LocalConfig(steps=1, batch_size=4))


def test_the_crf_runs_in_float32_under_autocast() -> None:
    """Mixed precision (the trainer's bf16 autocast) leaves the forward algorithm's matrix
    products in float32: the loss and decoding equal the float32 ones."""
    emissions, transitions, real = problem(seed=8)
    emissions, transitions = emissions.float() * 3, transitions.float() * 3
    target = torch.randint(0, C, real.shape, generator=torch.Generator().manual_seed(9))
    exact = crf.token_losses(emissions, target, real, transitions, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = crf.token_losses(emissions.bfloat16(), target, real, transitions, real)
        decoded = crf.max_marginals(emissions, transitions, real)
    assert mixed.dtype == torch.float32 and decoded.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=0, atol=2e-2)  # bf16 emissions' rounding
    torch.testing.assert_close(decoded, crf.max_marginals(emissions, transitions, real))
    emissions32 = emissions.bfloat16().float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = crf.token_losses(emissions32, target, real, transitions, real)
    torch.testing.assert_close(
        mixed, crf.token_losses(emissions32, target, real, transitions, real), rtol=1e-6, atol=1e-6
    )
