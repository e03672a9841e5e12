"""SNIPS joint intent detection and slot filling (Coucke et al. 2018; Goo et al. 2018 split)."""

from __future__ import annotations

from pathlib import Path

import torch

from polytask.data.dataset import TensorTaskDataset
from polytask.data.files import DataFile, resolve
from polytask.data.registry import register
from polytask.data.splits import DataSplits, InputSpec
from polytask.tasks.task import Task

FOLDER = "snips_joint"
MD5 = {
    ("train", "seq.in"): "196f9a0605932031a14ddd4e48b1b70c",
    ("train", "seq.out"): "76ff2f5b1345bb5af9429202903c83e8",
    ("train", "label"): "5effad6293d95b530905f1479274495b",
    ("valid", "seq.in"): "2999faa56fe291e8be86ecbd5822d0e0",
    ("valid", "seq.out"): "bda55a4b0a33c6437483462317f30674",
    ("valid", "label"): "2bc7995da8d73a49c88a49dd778fd0f8",
    ("test", "seq.in"): "9382823d9eaa80990bad5de367bdad0f",
    ("test", "seq.out"): "477a69eef4e3d5c2518286461ae502f2",
    ("test", "label"): "5b31fd69bf1c376b9340a5dc789f0e7e",
}
PAD, UNK, CLS = 0, 1, 2
SIZES = {"train": 13_084, "valid": 700, "test": 700}


def _lines(split: str, name: str, root: str | Path | None) -> list[str]:
    path = resolve(FOLDER, DataFile(f"{split}/{name}", MD5[(split, name)]), root)
    return path.read_text(encoding="utf-8").splitlines()


@register("snips")
def snips(root: str | Path | None = None, min_count: int = 1) -> DataSplits:
    """SNIPS (Coucke et al. 2018) in the joint NLU split of Goo et al. (NAACL 2018): 13,084
    training, 700 validation and 700 test utterances; tasks ``intent`` (7 classes, one per
    utterance) and ``slots`` (72 BIO tags, one per token: token labelling).

    Inputs are token ids ``(N, L)``: position 0 is a ``[CLS]`` token (id 2) for sequence
    heads, then the utterance's whitespace tokens, right-padded with 0; tokens seen fewer than
    ``min_count`` times in training are ``[UNK]`` (id 1). Slot targets are aligned with the
    tokens and ``-1`` (missing) at ``[CLS]`` and padding. Vocabulary, intents and tags come
    from the training split only. ``metadata`` holds ``vocab_size``, ``vocab``, ``intents``
    and ``tags`` (for :class:`~polytask.models.TransformerMTL`: ``vocab_size=...``,
    ``head_types={"slots": "token"}``). Slots are scored as the field reports them: span F1
    over BIO chunks (the primary metric), token accuracy and sentence accuracy
    (:mod:`polytask.tasks.spans`); a validation or test tag never seen in training is an
    error, not a silently dropped gold slot.
    """
    raw = {
        s: (_lines(s, "seq.in", root), _lines(s, "seq.out", root), _lines(s, "label", root))
        for s in SIZES
    }
    for split, (words, tags, labels) in raw.items():
        if not len(words) == len(tags) == len(labels) == SIZES[split]:
            raise ValueError(f"snips/{split}: expected {SIZES[split]} aligned lines")
    counts: dict[str, int] = {}
    for line in raw["train"][0]:
        for w in line.split():
            counts[w] = counts.get(w, 0) + 1
    vocab = ["[PAD]", "[UNK]", "[CLS]", *sorted(w for w, c in counts.items() if c >= min_count)]
    ids = {w: i for i, w in enumerate(vocab)}
    intents = sorted(set(raw["train"][2]))
    tag_names = sorted({t for line in raw["train"][1] for t in line.split()})
    intent_id, tag_id = (
        {x: i for i, x in enumerate(intents)},
        {t: i for i, t in enumerate(tag_names)},
    )
    length = 1 + max(len(line.split()) for split in raw.values() for line in split[0])
    datasets = {}
    for split, (words, tags, labels) in raw.items():
        tokens = torch.full((len(words), length), PAD, dtype=torch.long)
        slots = torch.full((len(words), length), -1, dtype=torch.long)
        tokens[:, 0] = CLS
        for n, (w, t) in enumerate(zip(words, tags, strict=True)):
            ws, ts = w.split(), t.split()
            if len(ws) != len(ts):
                raise ValueError(f"snips/{split} line {n + 1}: {len(ws)} tokens but {len(ts)} tags")
            tokens[n, 1 : 1 + len(ws)] = torch.tensor([ids.get(x, UNK) for x in ws])
            unseen = [x for x in ts if x not in tag_id]
            if unseen:  # a gold slot the scorer would silently drop
                raise ValueError(
                    f"snips/{split} line {n + 1}: tag {unseen[0]!r} never occurs in training"
                )
            slots[n, 1 : 1 + len(ts)] = torch.tensor([tag_id[x] for x in ts])
        intent = torch.tensor([intent_id.get(x, -1) for x in labels])
        name = "val" if split == "valid" else split
        datasets[name] = TensorTaskDataset(
            tokens, {"intent": intent, "slots": slots}, name=f"snips/{name}"
        )
    tasks = [
        Task("intent", "ce", metrics=("accuracy",), num_classes=len(intents)),
        Task(
            "slots",
            "ce",
            metrics=("span_f1", "accuracy", "sentence_accuracy"),
            num_classes=len(tag_names),
            labels=tag_names,
        ),
    ]
    meta = {
        "dataset": "snips",
        "split": "Goo et al. 2018 (train/valid/test)",
        "vocab_size": len(vocab),
        "vocab": vocab,
        "intents": intents,
        "tags": tag_names,
        "sizes": {s: len(d) for s, d in datasets.items()},
    }
    return DataSplits(
        datasets["train"], datasets["val"], datasets["test"], tasks, (length,), meta,
        InputSpec((length,), vocab_size=len(vocab)),
    )  # fmt: skip
