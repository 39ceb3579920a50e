# The two commands of a fresh machine: `make demo` and `make test` (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit anvil clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $(STAMP)

setup: $(STAMP)

## Set up and run the main job: the embedded defaults (digits, 20 peers, 20% sign-flip, fltrust),
## each peer its own state machine, aggregated under MPC, judged and paid on the embedded EVM.
demo: setup
	$(BIN)/phalanx simulate

## The real EVM node for the ledger's integration tests (skipped with a reason when npm is missing).
anvil:
	@if command -v npm >/dev/null 2>&1; then \
		test -x node_modules/.bin/anvil || npm install --no-save --no-audit --no-fund @foundry-rs/anvil >/dev/null; \
	else echo "npm not found: the anvil integration tests will be skipped"; fi

lint: setup
	$(BIN)/ruff check src tests benchmarks

typecheck: setup
	$(BIN)/mypy src/phalanx

## Two parts: the in-process tests spread over two workers (pytest-xdist, one file per worker
## at a time), then the ones that start their own processes and time them (peer networks on
## anvil, a Ray instance) alone, since a loaded machine slows their start-up past deadlines.
SERIAL := tests/node tests/e2e/test_ray_backend.py
unit: setup anvil
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(addprefix --ignore=,$(SERIAL))
	$(BIN)/python -m pytest -q $(SERIAL)

## Set up and run the whole test suite: lint, types, tests.
test: lint typecheck unit

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
