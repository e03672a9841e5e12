"""Token classification with a Hugging Face encoder and sub-word tokenizer (issue 20): word
labels go to each word's first piece (hand-worked cases), span F1 over the pieces equals span
F1 over the words, and a tiny randomly initialised BERT (built here: no model hub) learns
joint intent and slots under polytask's heads with a gradient balancer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import polytask
from polytask.data.subwords import align_labels, tokenize_words
from polytask.tasks.spans import SpanF1

TAGS = ["O", "B-artist", "I-artist", "B-song"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "play", "##ing", "the", "song",
         "by", "queen", "free", "##dom", "book", "a", "table", "for", "two", "night",
         "##s", "rain"]  # fmt: skip


def test_a_words_label_goes_to_its_first_piece_only() -> None:
    assert align_labels([None, 0, 0, 1, 2, None], [3, 4, 5]) == [-1, 3, -1, 4, 5, -1]
    assert align_labels([None, 0, 1, 1, 1, None, None], [2, 0]) == [-1, 2, 0, -1, -1, -1, -1]
    with pytest.raises(ValueError, match="only 1 labels"):
        align_labels([0, 1], [7])


def test_span_f1_over_first_pieces_equals_span_f1_over_words() -> None:
    word_gold = [[0, 1, 2, 0, 3], [3, 0, 0]]
    word_pred = [[0, 1, 0, 0, 3], [3, 0, 1]]
    pieces = [[None, 0, 0, 1, 2, 2, 3, 4, None], [None, 0, 1, 1, 2, None, None, None, None]]
    expected = SpanF1(TAGS)
    for p, g in zip(word_pred, word_gold, strict=True):
        expected.update(torch.tensor([p]), torch.tensor([g]))
    aligned = SpanF1(TAGS)
    gold = torch.tensor([align_labels(w, g) for w, g in zip(pieces, word_gold, strict=True)])
    pred = torch.tensor([[0 if a < 0 else a for a in align_labels(w, p)]
                         for w, p in zip(pieces, word_pred, strict=True)])  # fmt: skip
    aligned.update(pred, gold)
    assert float(aligned.compute()) == pytest.approx(float(expected.compute()))
    # gold: artist(1-2), song(4); song(0). predicted: artist(1-1), song(4); song(0), artist(2)
    assert float(expected.compute()) == pytest.approx(2 * 2 / (4 + 3))


@pytest.fixture
def tokenizer(tmp_path: Path):  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers", reason="needs polytask[text]")
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    return transformers.BertTokenizerFast(str(tmp_path / "vocab.txt"))


def test_tokenize_words_aligns_and_warns_when_it_cuts(tokenizer) -> None:  # type: ignore[no-untyped-def]
    inputs, labels = tokenize_words(tokenizer, [["playing", "freedom"], ["book", "a", "table"]],
                                    [[0, 3], [0, 0, 0]])  # fmt: skip
    assert inputs["tokens"].tolist()[0] == [2, 5, 6, 11, 12, 3]
    assert labels is not None and labels.tolist() == [[-1, 0, -1, 3, -1, -1],
                                                      [-1, 0, 0, 0, -1, -1]]  # fmt: skip
    assert inputs["mask"].tolist()[1] == [True] * 5 + [False]
    with pytest.warns(UserWarning, match="cut 1 labelled word"):
        tokenize_words(tokenizer, [["book", "a", "table"]], [[0, 0, 0]], max_length=4)
    with pytest.raises(ValueError, match="3 words and 2 labels"):
        tokenize_words(tokenizer, [["book", "a", "table"]], [[0, 0]])


@pytest.mark.parametrize("head", ["token", "crf"])
def test_a_tiny_bert_learns_intent_and_slots_under_polytask_heads(tokenizer, head) -> None:  # type: ignore[no-untyped-def]
    """Also with a CRF over the pieces: the later pieces of a word (-1) are summed out of
    its loss, and the decoded first pieces carry every span."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    sentences = [
        ["playing", "freedom", "by", "queen"], ["book", "a", "table", "for", "two"],
        ["play", "rain", "by", "queen"], ["book", "a", "table", "for", "nights"],
    ]  # fmt: skip
    slots = [[0, 3, 0, 1], [0, 0, 0, 0, 0], [0, 3, 0, 1], [0, 0, 0, 0, 0]]
    intents = torch.tensor([0, 1, 0, 1])
    inputs, labels = tokenize_words(tokenizer, sentences, slots)
    assert labels is not None
    encoder = BertModel(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32))  # fmt: skip
    model = polytask.models.create("transformer", heads={"intent": 2, "slots": 4},
                                   head_types={"slots": head}, encoder=encoder,
                                   hidden_size=16, pooling="mean")  # fmt: skip
    tasks = polytask.TaskSet([
        polytask.Task("intent", "ce", metrics=["accuracy"], num_classes=2),
        polytask.Task("slots", "ce" if head == "token" else "crf", metrics=["span_f1"],
                      num_classes=4, labels=TAGS),
    ])  # fmt: skip
    balancer = polytask.balancers.create("upgrad")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    targets = {"intent": intents, "slots": labels}
    first = None
    for _ in range(60):
        out = model(inputs)
        losses = tasks.losses(out, targets)
        first = first if first is not None else losses.detached().sum().item()
        polytask.backward(losses, balancer, features=out.features)
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    out = model(inputs)
    assert tasks.losses(out, targets).detached().sum().item() < 0.2 * first
    predicted = tasks.readable(out)["slots"].argmax(-1)
    metric = SpanF1(TAGS)
    metric.update(predicted, labels)
    assert float(metric.compute()) == 1.0  # the training sentences' spans, every one
