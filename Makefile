# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every dependency pinned, with the hashes of its files: what `make` installs.
LOCK := requirements.lock

.PHONY: demo test lint typecheck unit bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Pin again after changing pyproject.toml: its dependencies, test and lint tools and the
# build backend, for Python 3.11 and later on every platform, with hashes.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	printf 'setuptools>=69\nwheel\n' | $(BIN)/uv pip compile --quiet --generate-hashes \
	  --universal --python-version 3.11 --extra test --extra lint -o $(LOCK) pyproject.toml -

demo: $(STAMP)
	$(BIN)/dialer demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Tests run in TEST_PROCESSES processes at once (most of them wait on servers, not the CPU);
# the chaos suite runs alone afterwards: it restarts servers and dials against a deadline that
# measures the fleet, not the load of the tests beside it.
TEST_PROCESSES ?= 3

test: lint typecheck
	$(BIN)/pytest -n $(TEST_PROCESSES) --ignore=tests/chaos
	$(BIN)/pytest tests/chaos

# The fast subset: no PostgreSQL, Redis or RabbitMQ, none of the dialer's processes.
unit: $(STAMP)
	$(BIN)/pytest -q -m "not postgres and not redis and not rabbitmq and not e2e"

bench: $(STAMP)
	mkdir -p bench/results
	@set -e; for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dialer.db dialer.db-*
