"""Properties particular to each architecture, checked against hand-built references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import polytask
from polytask.models import (
    FAFS,
    MRN,
    UFO,
    CrossStitch,
    FeatureEmbedding,
    FeatureSchema,
    Sluice,
    SmallTowers,
    TransformerMTL,
    check_partition,
    group_by_affinity,
    task_affinity,
)
from polytask.models.esmm import product_logit
from polytask.models.experts import Experts
from polytask.models.mrn import flip_flop, tensor_normal_penalty
from polytask.training import Trainer, TrainerConfig

HEADS = {"a": 1, "b": 3}


# ----------------------------------------------------------------- gated experts
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mmoe", {"num_experts": 4}),
        ("omoe", {"num_experts": 4}),
        ("cgc", {"task_experts": 2, "shared_experts": 3}),
        ("ple", {"levels": 3, "task_experts": 2, "shared_experts": 1}),
    ],
)
def test_gate_weights_sum_to_one_per_sample(name: str, options: dict) -> None:
    model = polytask.models.create(name, heads=HEADS, input_dim=5, **options)
    out = model(torch.randn(7, 5))
    gates = {k: v for k, v in out.extras.items() if k.startswith("gates/")}
    assert gates
    for key, weights in gates.items():
        assert weights.shape[0] == 7 and (weights >= 0).all(), key
        torch.testing.assert_close(weights.sum(-1), torch.ones(7))


def test_mmoe_equals_its_formula() -> None:
    torch.manual_seed(0)
    model = polytask.models.create(
        "mmoe", heads=HEADS, input_dim=5, num_experts=3, expert_dims=(4,)
    )
    x = torch.randn(6, 5)
    out = model(x)
    experts = model.experts
    # Each expert by hand: relu(x W_e + b_e).
    outputs = torch.stack(
        [torch.relu(x @ experts.weights[0][:, e] + experts.biases[0][e]) for e in range(3)], 1
    )
    for t in HEADS:
        g = torch.softmax(model.gates[t].linear(x), -1)
        mixed = (g.unsqueeze(-1) * outputs).sum(1)
        torch.testing.assert_close(out.predictions[t], model.towers[t](mixed))


def test_experts_given_as_modules() -> None:
    modules = [nn.Sequential(nn.Linear(5, 6), nn.Tanh()) for _ in range(3)]
    experts = Experts(0, 5, modules=modules, out_dim=6)
    x = torch.randn(4, 5)
    torch.testing.assert_close(experts(x)[:, 1], modules[1](x))
    with pytest.raises(ValueError, match="out_dim"):
        Experts(0, 5, modules=modules)


def test_mmoe_gates_can_read_another_tensor() -> None:
    model = polytask.models.create("mmoe", heads=HEADS, input_dim=5, gate_dim=2, num_experts=3)
    out = model(torch.randn(4, 5), gate_inputs=torch.randn(4, 2))
    assert out.extras["gates/a"].shape == (4, 3)


# ----------------------------------------------------------------- soft sharing
def test_cross_stitch_with_identity_mixing_is_independent_columns() -> None:
    torch.manual_seed(0)
    model = CrossStitch(HEADS, input_dim=5, dims=(6, 4), init="identity")
    x = torch.randn(3, 5)
    out = model(x)
    for i, t in enumerate(HEADS):
        h = x
        for layer in model.columns.columns[i]:
            h = layer(h)
        torch.testing.assert_close(out.predictions[t], model.heads[t](h))
    # The default units mix: outputs then differ from the columns alone.
    mixed = CrossStitch(HEADS, input_dim=5, dims=(6, 4))
    mixed.load_state_dict(model.state_dict() | {
        k: v for k, v in mixed.state_dict().items() if k.startswith("units")
    })  # fmt: skip
    assert not torch.allclose(mixed(x).predictions["a"], out.predictions["a"])


def test_cross_stitch_units_learn_to_mix() -> None:
    model = CrossStitch(HEADS, input_dim=5, dims=(6, 4), init="identity")
    out = model(torch.randn(3, 5))
    out.predictions["a"].sum().backward()
    # Task a's top row gets gradient toward column b (off-diagonal), so sharing can grow.
    row = model.units.rows(-1)[0]
    assert row.grad is not None and row.grad[1] != 0


def test_sluice_orthogonality_penalty_matches_hand_formula() -> None:
    torch.manual_seed(0)
    model = Sluice(HEADS, input_dim=5, dims=(4, 4), subspaces=2, orthogonality=0.5)
    x = torch.randn(6, 5)
    model(x)
    penalty = model.penalty()
    assert penalty is not None
    # By hand: every column's layer outputs, split in halves G1, G2: 0.5 * ||G1^T G2 / B||^2.
    expected = torch.zeros(())
    xs = [x, x]
    for k in range(2):
        hs = [model.columns.columns[i][k](xs[i]) for i in range(2)]
        for h in hs:
            expected = expected + (h[:, :2].T @ h[:, 2:] / 6).pow(2).sum()
        spaces = [h[:, s * 2 : (s + 1) * 2] for h in hs for s in range(2)]
        rows = model.alphas.rows(k)
        mixed = [sum(rows[i][j] * spaces[j] for j in range(4)) for i in range(4)]
        xs = [torch.cat(mixed[0:2], 1), torch.cat(mixed[2:4], 1)]
    torch.testing.assert_close(penalty, 0.5 * expected)
    assert model.penalty() is None  # consumed: one penalty per forward
    with torch.no_grad():
        model(x)
    assert model.penalty() is None


def test_sluice_rejects_unequal_widths() -> None:
    with pytest.raises(ValueError, match="equal layer sizes"):
        Sluice(HEADS, input_dim=5, dims=(4, 6))
    with pytest.raises(ValueError, match="subspaces"):
        Sluice(HEADS, input_dim=5, dims=(5, 5), subspaces=2)


# ----------------------------------------------------------------- MTAN
def test_mtan_on_lenet_images_and_attention_is_a_mask() -> None:
    model = polytask.models.create("mtan", heads={"l": 10, "r": 10}, trunk="lenet")
    model.eval()
    out = model(torch.randn(2, 1, 28, 28))
    assert out.predictions["l"].shape == (2, 10)
    # A mask in (0, 1): the attended features never exceed the shared ones in magnitude.
    x = torch.randn(2, 1, 28, 28)
    p = model.stages[0](x)
    mask = model.attention["l"][0](p)
    assert ((mask > 0) & (mask < 1)).all()
    with pytest.raises(ValueError, match="include the last"):
        polytask.models.create("mtan", heads=HEADS, input_dim=4, attention_stages=[0])


def test_mtan_takes_any_stage_modules() -> None:
    stages = [nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Sequential(nn.Conv2d(4, 5, 3))]
    model = polytask.models.create(
        "mtan", heads=HEADS, trunk=None, stages=stages, input_shape=(3, 9, 9)
    )
    assert model(torch.randn(2, 3, 9, 9)).predictions["b"].shape == (2, 3)
    check_partition(model)


# ----------------------------------------------------------------- MRN
def test_tensor_normal_penalty_equals_the_kronecker_quadratic_form() -> None:
    g = torch.Generator().manual_seed(0)
    W = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    precisions = []
    for n in (3, 4, 5):
        A = torch.randn(n, n, generator=g, dtype=torch.float64)
        precisions.append(A @ A.T + torch.eye(n, dtype=torch.float64))
    kron = torch.kron(torch.kron(precisions[0], precisions[1]), precisions[2])
    v = W.reshape(-1)
    torch.testing.assert_close(tensor_normal_penalty(W, precisions), v @ kron @ v)


def _tensor_normal_loglik(W: torch.Tensor, covs: list[torch.Tensor]) -> float:
    """Log-density of vec(W) under N(0, S_t (x) S_o (x) S_i), from the dense Kronecker."""
    S = torch.kron(torch.kron(covs[0], covs[1]), covs[2])
    v = W.reshape(-1)
    return float(-0.5 * (v @ torch.linalg.solve(S, v) + torch.logdet(S)))


def test_flip_flop_is_coordinate_ascent_on_the_likelihood() -> None:
    g = torch.Generator().manual_seed(0)
    T, O, I = 3, 4, 5
    L = torch.linalg.cholesky(
        torch.tensor([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    )
    W = torch.einsum("tu,uoi->toi", L, torch.randn(T, O, I, generator=g, dtype=torch.float64))
    covs = [torch.eye(n, dtype=torch.float64) for n in (T, O, I)]
    # First step from identities, by hand: the input covariance is W's mode-3 scatter.
    first = flip_flop(W, covs, eps=0.0)
    scatter_i = torch.einsum("toi,toj->ij", W, W) / (T * O)
    S_o = torch.einsum("toi,ij,tpj->op", W, torch.linalg.inv(scatter_i), W) / (T * I)
    S_t = torch.einsum(
        "toi,op,ij,upj->tu", W, torch.linalg.inv(S_o), torch.linalg.inv(scatter_i), W
    ) / (O * I)
    scale = T / S_t.trace()
    torch.testing.assert_close(first[0], S_t * scale)
    torch.testing.assert_close(first[2], scatter_i / scale)
    likelihoods = [_tensor_normal_loglik(W, covs)]
    for _ in range(8):
        covs = flip_flop(W, covs, eps=0.0)
        likelihoods.append(_tensor_normal_loglik(W, covs))
        assert abs(float(covs[0].trace()) - T) < 1e-9
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(likelihoods))
    assert likelihoods[-1] > likelihoods[0] + 1
    # The learnt task covariance shows the planted relation: tasks 0 and 1 correlate.
    S = covs[0]
    corr = S / torch.sqrt(S.diagonal()[:, None] * S.diagonal()[None, :])
    assert corr[0, 1] > 0.5 and abs(corr[0, 2]) < corr[0, 1]


def test_mrn_penalty_reaches_the_trainer() -> None:
    torch.manual_seed(0)
    model = MRN({"a": 2, "b": 2}, input_dim=4, trunk_dims=(6,), head_dims=(5,), strength=10.0)
    assert model.tied == [0, 2]  # both tower layers have one shape across tasks
    tasks = polytask.TaskSet([polytask.Task("a", "ce"), polytask.Task("b", "ce")])
    x, y = torch.randn(8, 4), {"a": torch.randint(0, 2, (8,)), "b": torch.randint(0, 2, (8,))}
    # Reference: the gradient of the mean loss plus the penalty, by plain autograd.
    reference = MRN({"a": 2, "b": 2}, input_dim=4, trunk_dims=(6,), head_dims=(5,), strength=10.0)
    reference.load_state_dict(model.state_dict())
    loss = tasks.losses(reference(x), y).stack().mean() + reference.penalty()
    loss.backward()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer = Trainer(
        model, tasks, polytask.balancers.create("equal"), optimizer,
        config=TrainerConfig(progress=False),
    )  # fmt: skip
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train_step(polytask.data.Batch(x, y))
    for n, p in model.named_parameters():
        ref = dict(reference.named_parameters())[n].grad
        torch.testing.assert_close(before[n] - p.detach(), ref, msg=n)
    assert model.task_covariance().shape == (2, 2)
    with pytest.raises(ValueError, match="no tower layers"):
        MRN({"a": 2, "b": 3}, input_dim=4, head_dims=())


# ----------------------------------------------------------------- FAFS
def test_task_affinity_and_grouping() -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(200, 2, generator=g)
    errors = torch.stack([base[:, 0], base[:, 0] + 0.01, base[:, 1], base[:, 1] * 2], 1)
    A = task_affinity(errors)
    torch.testing.assert_close(A.diagonal(), torch.ones(4))
    assert A[0, 1] == 1 and A[2, 3] == 1 and A[0, 2] < 0.7
    assert group_by_affinity(A, 2) == [(0, 1), (2, 3)]
    assert group_by_affinity(A, 4) == [(0,), (1,), (2,), (3,)]


def test_fafs_widening_keeps_the_function_and_the_partition() -> None:
    torch.manual_seed(0)
    heads = {"a": 1, "b": 1, "c": 2, "d": 1}
    model = FAFS(heads, input_dim=6, dims=(8, 8))
    model.eval()
    x = torch.randn(5, 6)
    before = model(x).predictions
    g = torch.Generator().manual_seed(1)
    base = torch.randn(100, 2, generator=g)
    errors = torch.stack([base[:, 0], base[:, 0], base[:, 1], base[:, 1]], 1)
    assert model.grow(errors, 2) == [(0, 1), (2, 3)]
    assert model.grow(errors, 2) == [(0, 1), (2, 3)]
    assert "layer 1 (8 units): {a, b} {c, d}" in model.describe_tree()
    after = model(x).predictions
    for t in heads:
        torch.testing.assert_close(after[t], before[t], rtol=0, atol=0)
    check_partition(model)
    with pytest.raises(RuntimeError, match="already been widened"):
        model.grow(errors, 2)
    rebuilt = FAFS(heads, input_dim=6, dims=(8, 8), groups=model.groups)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    torch.testing.assert_close(rebuilt(x).predictions["c"], after["c"])
    with pytest.raises(ValueError, match="lie within"):
        FAFS(heads, input_dim=6, dims=(8, 8), groups=[[(0, 1), (2, 3)], [(0, 2), (1, 3)]])


# ----------------------------------------------------------------- small towers
def test_small_towers_loss_formula_and_inference() -> None:
    torch.manual_seed(0)
    base = polytask.models.create("shared_bottom", heads=HEADS, input_dim=5, trunk_dims=(6,))
    model = SmallTowers(base, gamma=0.3)
    check_partition(model)
    tasks = polytask.TaskSet([polytask.Task("a", "bce"), polytask.Task("b", "ce", num_classes=3)])
    x = torch.randn(8, 5)
    y = {"a": torch.randint(0, 2, (8,)).float(), "b": torch.randint(0, 3, (8,))}
    y["b"][0] = -1  # a missing label is missing for the small tower too
    out = model(x)
    losses = tasks.losses(out, y)
    plain = tasks.losses(out.predictions, y)
    small_b = out.companions["b"][0][0]
    expected = plain["b"] + 0.3 * nn.functional.cross_entropy(small_b[1:], y["b"][1:])
    torch.testing.assert_close(losses["b"], expected)
    # Inference: the wrapped model's outputs exactly, and no small-tower parameter or call.
    calls = []
    for tower in model.small.values():
        tower.register_forward_hook(lambda *args: calls.append(1))
    model.eval()
    torch.testing.assert_close(model(x).predictions["b"], base(x).predictions["b"], rtol=0, atol=0)
    assert not calls and not model(x).companions
    deployed = model.inference_model()
    assert sum(p.numel() for p in deployed.parameters()) == sum(
        p.numel() for p in base.parameters()
    )
    assert sum(p.numel() for p in model.parameters()) > sum(
        p.numel() for p in deployed.parameters()
    )


def test_small_towers_need_a_feature_width() -> None:
    mmoe = polytask.models.create("mmoe", heads=HEADS, input_dim=5, num_experts=2, expert_dims=(4,))
    with pytest.raises(ValueError, match="feature_dim"):
        SmallTowers(mmoe)
    model = SmallTowers(mmoe, feature_dim=8)
    out = model(torch.randn(3, 5))
    assert out.companions["a"][0][0].shape == (3, 1)


# ----------------------------------------------------------------- UFO
@pytest.mark.parametrize(
    "routes",
    [
        None,
        {"a": ["shared", "task", "shared"], "b": ["task", "task", "task"]},
        {"a": ["task", "shared", "shared"], "b": ["task", "shared", "shared"]},
    ],
)
def test_ufo_extracted_subnetwork_reproduces_the_supernet(routes: dict | None) -> None:
    torch.manual_seed(0)
    model = UFO(HEADS, input_dim=6, width=8, num_blocks=3, routes=routes)
    model.eval()
    x = torch.randn(5, 6)
    out = model(x)
    for t in HEADS:
        sub = model.extract(t)
        torch.testing.assert_close(sub(x), out.predictions[t], rtol=0, atol=0)
        own = set(map(id, model.task_parameters(t))) | set(map(id, model.shared_parameters()))
        path = sum(p.numel() for p in model.parameters() if id(p) in own)
        # Units shared with the other task but unused by this one are not in the copy.
        assert sum(p.numel() for p in sub.parameters()) <= path


def test_ufo_route_errors() -> None:
    with pytest.raises(ValueError, match="route of task 'a'"):
        UFO(HEADS, input_dim=4, num_blocks=2, routes={"a": ["shared"]})
    with pytest.raises(KeyError, match="unknown task"):
        UFO(HEADS, input_dim=4, num_blocks=2, routes={"z": ["shared", "task"]})


# ----------------------------------------------------------------- transformer
def test_transformer_padding_changes_no_output() -> None:
    torch.manual_seed(0)
    heads = {"intent": 4, "slots": 5, "score": 1}
    for pooling in ("cls", "mean"):
        model = TransformerMTL(
            heads, head_types={"slots": "token", "score": "ranking"}, vocab_size=30,
            pooling=pooling, d_model=16, num_heads=2,
        )  # fmt: skip
        model.train()  # dropout on: compare with the same seed
        tokens = torch.randint(1, 30, (3, 6))
        tokens[0, 4:] = 0
        padded = torch.cat([tokens, torch.zeros(3, 5, dtype=torch.long)], 1)
        model.eval()
        a, b = model(tokens), model(padded)
        torch.testing.assert_close(a.predictions["intent"], b.predictions["intent"])
        torch.testing.assert_close(a.predictions["score"], b.predictions["score"])
        torch.testing.assert_close(a.predictions["slots"][1:], b.predictions["slots"][1:, :6])
        torch.testing.assert_close(a.predictions["slots"][0, :4], b.predictions["slots"][0, :4])
        # Changing a padded position's id changes nothing either.
        other = tokens.clone()
        other[0, 5] = 0
        torch.testing.assert_close(model(other).predictions["intent"], a.predictions["intent"])


def test_transformer_pairs_segments_and_adapter() -> None:
    torch.manual_seed(0)
    model = TransformerMTL(
        {"nli": 3}, head_types={"nli": "pair"}, vocab_size=20, d_model=8, num_heads=2
    )
    tokens = torch.randint(1, 20, (2, 7))
    segments = torch.tensor([[0, 0, 0, 1, 1, 1, 1]] * 2)
    model.eval()
    with_segments = model({"tokens": tokens, "segments": segments}).predictions["nli"]
    assert with_segments.shape == (2, 3)
    assert not torch.allclose(with_segments, model(tokens).predictions["nli"])

    class HFLike(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(20, 6)

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            class Out:
                last_hidden_state = self.embed(input_ids) * attention_mask.unsqueeze(-1)

            return Out()

    adapted = TransformerMTL(
        {"a": 2, "tags": 3}, head_types={"tags": "token"}, encoder=HFLike(), hidden_size=6
    )
    out = adapted(tokens)
    assert out.predictions["tags"].shape == (2, 7, 3)
    check_partition(adapted)
    with pytest.raises(ValueError, match="hidden_size"):
        TransformerMTL({"a": 2}, encoder=HFLike())
    with pytest.raises(ValueError, match="ranking head"):
        TransformerMTL({"a": 2}, head_types={"a": "ranking"}, vocab_size=5)


# ----------------------------------------------------------------- features and ESMM
def test_feature_embedding_lookup_pooling_and_sharing() -> None:
    torch.manual_seed(0)
    schema = FeatureSchema.from_config(
        {
            "sparse": [{"name": "user", "vocab_size": 5, "embed_dim": 3},
                       {"name": "item", "vocab_size": 6, "embed_dim": 4}],
            "sequence": [{"name": "hist", "vocab_size": 6, "embed_dim": 4, "shared_with": "item",
                          "pooling": "mean"},
                         {"name": "hist_max", "vocab_size": 6, "embed_dim": 4,
                          "shared_with": "item", "pooling": "max"}],
            "dense": [{"name": "age"}, {"name": "pos", "dim": 2}],
        }
    )  # fmt: skip
    layer = FeatureEmbedding(schema)
    assert layer.output_dim == 3 + 4 + 4 + 4 + 1 + 2
    assert len(layer.tables) == 2  # one table per embedding width
    hist = torch.tensor([[1, 2, -1], [-1, -1, -1]])
    x = {
        "user": torch.tensor([0, 4]),
        "item": torch.tensor([2, 5]),
        "hist": hist,
        "hist_max": hist,
        "age": torch.tensor([1.5, -2.0]),
        "pos": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
    }
    out = layer(x)
    assert out.shape == (2, layer.output_dim)
    user_table, item_table = layer.tables[0].weight, layer.tables[1].weight
    torch.testing.assert_close(out[:, :3], user_table[[0, 4]])
    item = out[:, 3:7]
    torch.testing.assert_close(item, item_table[[2, 5]])
    # The sequence uses the item table: the mean of items 1 and 2; an empty sequence gives 0.
    torch.testing.assert_close(out[0, 7:11], item_table[[1, 2]].mean(0))
    torch.testing.assert_close(out[1, 7:11], torch.zeros(4))
    torch.testing.assert_close(out[0, 11:15], item_table[[1, 2]].max(0).values)
    torch.testing.assert_close(out[:, 15:], torch.tensor([[1.5, 1.0, 2.0], [-2.0, 3.0, 4.0]]))
    with pytest.raises(KeyError, match="lack feature"):
        layer({"user": x["user"]})


def test_feature_embedding_gradients_match_nn_embedding() -> None:
    # The lookup is index_select (a faster backward on CPU); its table gradient must be the
    # embedding's, repeated ids accumulating.
    torch.manual_seed(1)
    schema = {"sparse": [{"name": f"f{i}", "vocab_size": 7, "embed_dim": 3} for i in range(4)]}
    layer = FeatureEmbedding(schema)
    x = {f"f{i}": torch.randint(0, 7, (32,)) for i in range(4)}
    upstream = torch.randn(32, 12)
    (layer(x) * upstream).sum().backward()
    table = layer.tables[0].weight.detach().clone().requires_grad_(True)
    ids = torch.stack([x[f"f{i}"] + 7 * i for i in range(4)], dim=1)
    (torch.nn.functional.embedding(ids, table).flatten(1) * upstream).sum().backward()
    torch.testing.assert_close(layer.tables[0].weight.grad, table.grad)


def test_feature_schema_errors() -> None:
    with pytest.raises(ValueError, match="unique"):
        FeatureSchema.from_config({"dense": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ValueError, match="shares the table"):
        FeatureSchema.from_config({"sparse": [{"name": "a", "vocab_size": 3, "shared_with": "b"}]})
    with pytest.raises(ValueError, match="embed_dim must match"):
        FeatureSchema.from_config(
            {"sparse": [{"name": "a", "vocab_size": 3},
                        {"name": "b", "vocab_size": 3, "embed_dim": 4, "shared_with": "a"}]}
        )  # fmt: skip
    with pytest.raises(KeyError, match="feature kinds"):
        FeatureSchema.from_config({"categorical": []})
    with pytest.raises(TypeError, match="sparse feature"):
        FeatureSchema.from_config({"sparse": [{"name": "a"}]})


def test_esmm_ctcvr_is_the_product_of_ctr_and_cvr() -> None:
    torch.manual_seed(0)
    model = polytask.models.create("esmm", input_dim=6, tower_dims=(8,))
    out = model(torch.randn(5, 6))
    ctr = torch.sigmoid(out.predictions["ctr"]).squeeze(1)
    ctcvr = torch.sigmoid(out.predictions["ctcvr"]).squeeze(1)
    torch.testing.assert_close(ctcvr, ctr * out.extras["cvr"].squeeze(1))
    a = torch.tensor([-30.0, -2.0, 0.0, 3.0, 15.0, 40.0, 200.0])
    b = torch.tensor([1.0, -1.0, 0.5, 2.0, 15.0, 40.0, 200.0])
    exact = [math.log(p / (1 - p)) if p < 1 else None for p in
             (torch.sigmoid(a.double()) * torch.sigmoid(b.double())).tolist()]  # fmt: skip
    got = product_logit(a, b)
    assert torch.isfinite(got).all()
    for value, reference in zip(got.tolist(), exact, strict=True):
        if reference is not None and abs(reference) < 30:
            assert abs(value - reference) < 1e-4 * max(1.0, abs(reference))
    with pytest.raises(ValueError, match="exactly two binary tasks"):
        polytask.models.create("esmm", heads={"click": 1, "buy": 1}, input_dim=3)


def test_list_models_prints_every_architecture_with_options(capsys: pytest.CaptureFixture) -> None:
    from polytask.cli.main import main

    assert main(["list", "models"]) == 0
    printed = capsys.readouterr().out
    for name in polytask.models.available():
        assert name in printed
    assert "num_experts=8" in printed and "input_layer=None" in printed
    assert "MMoE: multi-gate mixture of experts (Ma et al., KDD 2018)." in printed


def test_experts_and_towers_from_factories() -> None:
    """No architecture is tied to MLP experts or towers: factories build any module."""
    built = []

    def expert(in_dim: int) -> nn.Module:
        built.append(in_dim)
        return nn.Sequential(nn.Linear(in_dim, 6), nn.Tanh())

    def tower(in_dim: int, out_dim: int) -> nn.Module:
        return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim))

    model = polytask.models.create(
        "ple", heads=HEADS, input_dim=5, levels=2, experts=expert, expert_dim=6, tower_dims=tower
    )
    # Two levels of (2 tasks x 1 + 1 shared) experts; level 2 reads the level-1 width.
    assert built == [5, 5, 5, 6, 6, 6]
    out = model(torch.randn(4, 5))
    assert out.predictions["b"].shape == (4, 3)
    assert isinstance(model.towers["a"][0], nn.LayerNorm)
    check_partition(model)
    with pytest.raises(ValueError, match="expert_dim"):
        polytask.models.create("cgc", heads=HEADS, input_dim=5, experts=expert)
    for name in ("mmoe", "cross_stitch", "ufo", "mtan", "fafs", "sluice", "transformer"):
        options = {"vocab_size": 9} if name == "transformer" else {"input_dim": 8}
        key = "tower_dims" if name in ("mmoe",) else "head_dims"
        m = polytask.models.create(name, heads=HEADS, **options, **{key: tower})
        heads = getattr(m, "towers", None) or m.heads
        assert isinstance(heads["b"][0], nn.LayerNorm), name


def test_batched_experts_equal_separate_mlps() -> None:
    torch.manual_seed(0)
    experts = Experts(3, 5, (4, 6))
    x = torch.randn(7, 5)
    by_hand = []
    for k in range(3):
        h = x
        for w, b in zip(experts.weights, experts.biases, strict=True):
            h = torch.relu(h @ w[:, k] + b[k])
        by_hand.append(h)
    torch.testing.assert_close(experts(x), torch.stack(by_hand, 1))


def test_bilstm_padding_changes_no_output_and_reads_both_directions() -> None:
    """The BiLSTM packs sequences by their real length: trailing padding changes no output
    at a real position (the backward direction starts at each sequence's own last token),
    and a token changes the states before it (backward) and after it (forward)."""
    from polytask.models import BiLSTMMTL

    torch.manual_seed(0)
    heads = {"intent": 4, "slots": 5}
    for pooling in ("cls", "mean"):
        model = BiLSTMMTL(heads, head_types={"slots": "token"}, vocab_size=30, embed_dim=8,
                          hidden=6, num_layers=2, pooling=pooling).eval()  # fmt: skip
        tokens = torch.randint(1, 30, (3, 6))
        tokens[0, 4:] = 0
        padded = torch.cat([tokens, torch.zeros(3, 5, dtype=torch.long)], 1)
        a, b = model(tokens), model(padded)
        torch.testing.assert_close(a.predictions["intent"], b.predictions["intent"])
        torch.testing.assert_close(a.predictions["slots"][1:], b.predictions["slots"][1:, :6])
        torch.testing.assert_close(a.predictions["slots"][0, :4], b.predictions["slots"][0, :4])
        changed = tokens.clone()
        changed[1, 3] = (changed[1, 3] % 29) + 1
        slots = model(changed).predictions["slots"][1]
        assert not torch.allclose(slots[0], a.predictions["slots"][1, 0])  # backward reaches
        assert not torch.allclose(slots[5], a.predictions["slots"][1, 5])  # forward reaches
    check_partition(model)
    assert polytask.models.create("bilstm", heads=heads, vocab_size=30).encoder is not None
