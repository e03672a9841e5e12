"""keep_freed_memory: glibc keeps freed memory for reuse (measured by page faults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from polytask.training import allocator
from polytask.training.experiment import ExperimentConfig, NamedConfig, prepare
from tests.test_training import make_data, make_trainer

# Allocate and touch six 4 MiB tensors, free them all, nine rounds; report the minor page
# faults of rounds 2-9 (after the first round the memory could be reused). Run in a fresh
# process: the malloc settings are process-wide.
PROBE = """
import json, resource, sys, torch
from polytask.training.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def round_():
    blocks = [torch.ones(1 << 20) for _ in range(6)]
    del blocks
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    round_()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""

glibc = pytest.mark.skipif(allocator.glibc_version() is None, reason="needs glibc")


def faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("LD_PRELOAD", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True
    )
    return int(json.loads(done.stdout))


@glibc
def test_freed_memory_is_reused_without_page_faults() -> None:
    pages = 8 * 6 * (4 << 20) // 4096  # pages touched in rounds 2-9
    default = faults("default")
    if default < pages // 8:
        pytest.skip(f"this malloc already keeps freed memory ({default} faults for {pages} pages)")
    assert faults("keep") < pages // 20


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="mmap_threshold"):
        allocator.keep_freed_memory(mmap_threshold=64 << 20)
    with pytest.raises(ValueError, match="trim_threshold"):
        allocator.keep_freed_memory(trim_threshold=0)


def test_other_c_libraries_warn_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "glibc_version", lambda: None)
    with pytest.warns(RuntimeWarning, match="jemalloc or tcmalloc"):
        assert allocator.keep_freed_memory() is False


@pytest.mark.parametrize("keep", [True, False])
def test_trainer_applies_it_as_configured(keep: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr("polytask.training.trainer.keep_freed_memory", lambda: calls.append(True))
    trainer = make_trainer(None, "equal", epochs=1, device="cpu", keep_freed_memory=keep)
    trainer.fit(make_data())
    assert calls == ([True] if keep and allocator.glibc_version() else [])


@pytest.mark.parametrize("keep", [True, False])
def test_experiments_pass_it_to_the_trainer(keep: bool) -> None:
    config = ExperimentConfig(
        dataset=NamedConfig("synthetic_correlation", {"num_samples": 64}),
        keep_freed_memory=keep,
        progress=False,
        report=False,
    )
    assert prepare(config, write=False).trainer.config.keep_freed_memory is keep
