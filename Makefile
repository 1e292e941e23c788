# The two commands of the README: `make run` (local stack) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := functions tests $(wildcard infra bench)

.PHONY: install run test lint typecheck unit format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/oms-webhooks local

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

format: install
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache

# The CDK app's cloud assembly (cdk.out/): no AWS account, credentials or Docker;
# the code asset is bundled with the local pip (arm64 wheels from PyPI).
.PHONY: synth
synth: install
	$(BIN)/python infra/app.py $(SYNTH_ARGS)
