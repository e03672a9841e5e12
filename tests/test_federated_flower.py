"""The Flower adapter against the engine-free core: the same ServerApp and ClientApp that
Flower's engines run, driven in this process (no Ray), give bit for bit the core's run
for every registered algorithm; a ClientApp called with a hand-built message and context
keeps its private state in context.state and sends only what the algorithm shares."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

import polytask.federated

pytest.importorskip("flwr", reason="the Flower adapter needs polytask[federated]")

from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from polytask.data.dataset import TensorTaskDataset
from polytask.federated import create, evaluate_clients, run_rounds
from polytask.federated.flower import (
    FlowerServer,
    client_source,
    make_client_app,
    run_in_process,
)
from polytask.federated.flower.client_app import PRIVATE
from polytask.federated.flower.in_process import task_identity
from polytask.federated.flower.records import from_record, to_record
from polytask.federated.rounds import RoundConfig

from .test_federated_core import clients, setup


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[n], b[n]) for n in a)


def flower_run(name: str, data: list, config, rounds: int, plan: RoundConfig):
    server = FlowerServer(create(name), config, rounds, len(data), plan)
    grid = run_in_process(server.app(), make_client_app(create(name), config,
                          client_source(data, data)), len(data))  # fmt: skip
    private = [from_record(s[PRIVATE]) if PRIVATE in s else {} for s in grid.private_states()]
    return server, private


@pytest.mark.parametrize("name", sorted(polytask.federated.ALGORITHMS))
def test_a_flower_run_equals_the_core_run_bit_for_bit(name: str) -> None:
    """Read from the registry: global arrays, every client's private state, each round's
    client metrics and the per-client evaluation after the last round are equal, under
    sampling and stragglers (the strategy plans rounds as run_rounds does)."""
    data, config = clients(count=4), setup()
    plan = RoundConfig(fraction=0.75, stragglers=0.34, straggler_mode="fewer_steps")
    core = run_rounds(create(name), data, config, rounds=3, participation=plan)
    server, private = flower_run(name, data, config, 3, plan)
    assert same(server.global_arrays, core.global_arrays)
    assert all(same(p, q) for p, q in zip(private, core.private, strict=True))
    assert server.history == core.history
    expected = evaluate_clients(create(name), core, data, data, config)
    assert server.scores[3].losses == expected.losses
    assert server.scores[3].examples == expected.examples


def test_dropped_stragglers_send_nothing_and_keep_their_state() -> None:
    data, config = clients(count=4), setup()
    plan = RoundConfig(fraction=1.0, stragglers=0.5, straggler_mode="drop")
    core = run_rounds(create("ditto"), data, config, rounds=2, participation=plan)
    server, private = flower_run("ditto", data, config, 2, plan)
    assert [sorted(h) for h in server.history] == [sorted(h) for h in core.history]
    assert all(len(h) == 2 for h in server.history)  # two of four clients replied each round
    assert same(server.global_arrays, core.global_arrays)
    assert all(same(p, q) for p, q in zip(private, core.private, strict=True))


def train_message(arrays: dict, node: int, seed: int = 7, round: int = 1) -> Message:
    config = ConfigRecord({"seed": seed, "steps": -1, "round": round})
    content = RecordDict({"arrays": to_record(arrays), "config": config})
    return Message(content, dst_node_id=node, message_type=MessageType.TRAIN)


def test_a_client_app_called_by_hand_keeps_heads_and_state_at_home() -> None:
    """FedPer on a hand-built message and context: the reply holds the trunk only, the
    heads are in context.state, and the next call starts from them."""
    data, config = clients(count=2), setup()
    algorithm = create("fedper")
    app = make_client_app(algorithm, config, client_source(data))
    context = Context(run_id=1, node_id=11, node_config={"partition-id": 1, "num-partitions": 2},
                      state=RecordDict(), run_config={})  # fmt: skip
    start = algorithm.initial_arrays(config)
    with task_identity(1):
        reply = app(train_message(start, 11), context)
        sent = from_record(reply.content["arrays"])
        assert sent and not any("head" in n or "tower" in n for n in sent)
        assert set(sent) < set(start) or set(sent) == set(start)
        kept = from_record(context.state[PRIVATE])
        assert kept and all(("head" in n or "tower" in n) for n in kept)
        assert reply.content["metrics"]["num-examples"] == len(data[1])
        again = app(train_message(sent, 11, round=2), context)  # heads from the state, not fresh
        direct = algorithm.client_update(
            sent, kept, polytask.federated.ClientRound(data[1], config, 7, 1)
        )
    assert same(from_record(again.content["arrays"]), direct.arrays)


def test_a_client_that_fails_stops_the_run_with_its_name() -> None:
    """A client whose training raises is an error reply; the server stops and names the
    client and the cause instead of averaging the others in silence."""
    data, config = clients(count=3), setup()
    broken = list(data)
    broken[2] = TensorTaskDataset(
        torch.randn(8, 5),
        {"a": torch.randn(8), "b": torch.randn(8)},  # 5 inputs, not 6
    )
    server = FlowerServer(create("fedavg"), config, 1, 3)
    app = make_client_app(create("fedavg"), config, client_source(broken))
    with pytest.raises(RuntimeError, match=r"(?s)round 1: client 2 failed.*shapes cannot"):
        run_in_process(server.app(), app, 3)


def test_a_node_without_a_partition_id_is_named() -> None:
    data, config = clients(count=1), setup()
    app = make_client_app(create("fedavg"), config, client_source(data))
    context = Context(run_id=1, node_id=3, node_config={}, state=RecordDict(), run_config={})
    with task_identity(1), pytest.raises(KeyError, match="partition-id=K"):
        app(train_message({}, 3), context)


def test_flower_is_configured_before_it_starts() -> None:
    """No telemetry, update check, runtime installs or Ray usage statistics; FLWR_HOME is a
    temporary folder unless the user set one."""
    for name, value in {
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }.items():
        assert os.environ[name] == value
    assert os.path.isdir(os.environ["FLWR_HOME"])


def test_missing_flower_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from polytask._extras import MissingExtraError
    from polytask.federated.flower.environment import flower

    monkeypatch.setitem(sys.modules, "flwr.simulation", None)
    with pytest.raises(MissingExtraError, match=r"polytask\[federated\]"):
        flower("flwr.simulation")


@pytest.mark.slow
def test_flowers_simulation_engine_equals_the_core_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """engine=simulation (Flower's simulation engine, Ray actors for the clients) gives the
    core's run bit for bit: the same rounds, each client's state written by its actor."""
    pytest.importorskip("ray", reason="Flower's simulation engine needs polytask[federated]")
    import json

    from polytask.federated.experiment import FederatedConfig
    from polytask.federated.run import run_federated

    from .test_federated_command import write_config

    path = write_config(tmp_path, "rounds: 2")
    for engine in ("core", "simulation"):
        overrides = [f"engine={engine}", f"output={tmp_path}/{engine}"]
        config = FederatedConfig.from_yaml(path, overrides)
        run_federated(config, say=lambda _: None)
    core, simulated = (json.loads((tmp_path / e / "results.json").read_text())
                       for e in ("core", "simulation"))  # fmt: skip
    assert core["per_client"] == simulated["per_client"]
    assert core["history"] == simulated["history"]
