# polytask: the two-command quick start is `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

# Real data sets held beside the project (no network needed when present).
ifneq ($(wildcard ../shared/data),)
export POLYTASK_DATA ?= $(abspath ../shared/data)
endif
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test test-slow lint typecheck browser bench bench-full clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	# A missing or half-made environment (no working pip) is created afresh.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build, so no later resolution pulls CUDA packages.
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/polytask demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck browser
	$(BIN)/pytest -q

# Headless chromium opens the HTML reports in one test; installed from Debian's packages when
# this machine allows it (root, apt), otherwise that test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/dev/null 2>&1 || echo "note: chromium not installed; the browser test will be skipped"; }

test-slow: $(STAMP)
	# Flower's simulation engine (Ray, ~0.5 GB) for the slow federated test; torch stays pinned.
	$(BIN)/pip install --quiet -e '.[dev,federated]' '$(TORCH_PIN)'
	$(BIN)/pytest -q -m slow

# Quick versions of every benchmark (minutes); bench-full runs each script's --full mode
# (each sized to finish within about an hour on a 2-core machine, but snips_joint: 2.5 hours).
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

bench-full: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --full

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache runs
