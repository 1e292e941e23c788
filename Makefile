# The two commands of the README: `make run` (local stack) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := functions local tests $(wildcard infra bench)

.PHONY: install run test lint typecheck unit format clean wheelhouse

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The Lambda asset's wheels (arm64 and this machine's) and boto3's, from PyPI once,
# so that the tests and benchmarks that build a real asset install offline
# (tests/infra/test_asset.py, bench/cold_import.py). Without them those tests skip.
WHEELHOUSE := $(VENV)/wheelhouse
WHEELS_STAMP := $(WHEELHOUSE)/.downloaded
wheelhouse: $(WHEELS_STAMP)

$(WHEELS_STAMP): $(STAMP)
	cd infra && ../$(BIN)/python -m oms_webhooks_infra.asset wheelhouse ../$(WHEELHOUSE) \
		&& touch ../$(WHEELS_STAMP) \
		|| echo "make: no wheelhouse (PyPI unreachable?): the asset tests will skip"

# Ports of the local stack: make run API_PORT=8100 AWS_PORT=4666
API_PORT ?= 8000
AWS_PORT ?= 4566

run: install
	$(BIN)/oms-webhooks local --api-port $(API_PORT) --aws-port $(AWS_PORT)

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

# Four workers on two cores: the functional tests mostly wait on the network and
# the clock, so four local stacks keep the cores busy (measured: README, top);
# make test TEST_WORKERS=2 on a machine where that is too many.
TEST_WORKERS ?= 4
test: lint typecheck wheelhouse
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

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

# Benchmarks (bench/, README "Performance"): one JSON line each on stdout.
# `make bench` runs them all; `make bench NAME=throughput` runs one;
# BENCH_ARGS passes options (e.g. BENCH_ARGS="--n 200" with NAME=...).
BENCH_NAMES := batch_concurrency dead_endpoint_isolation fanout_cost cold_import throughput aws_cost retry_punctuality filter_cost kept_events_cost
.PHONY: bench
bench: install
	@set -e; for name in $(or $(NAME),$(BENCH_NAMES)); do \
		$(BIN)/python bench/$$name.py $(BENCH_ARGS); \
	done
