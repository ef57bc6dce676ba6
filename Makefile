# Two commands matter: `make demo` and `make test`. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes: most end-to-end tests wait on compressed clocks, so 2 cores carry 4.
# --maxschedchunk=1: xdist hands tests out one at a time; by default each worker first gets a
# run of consecutive tests, and the slow end-to-end ones (sorted first) all went to one worker.
TEST_WORKERS ?= 4

.PHONY: help demo test check bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## run the main job on embedded defaults: a cascade exercise against a simulated ward
	$(BIN)/relay demo

test: $(STAMP)  ## run the whole test suite (needs PostgreSQL and Redis on 127.0.0.1)
	@command -v chromium >/dev/null || (apt-get install -y -q chromium fonts-ipafont-gothic >/dev/null 2>&1 \
		|| echo "chromium not installed (needs root and apt): the browser test will skip")
	$(BIN)/pytest -q -n $(TEST_WORKERS) --maxschedchunk=1 --durations=15

check: $(STAMP)  ## lint and type-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check relay channels simulator workers
	$(BIN)/mypy

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed  ## benchmarks -> ops/bench/RESULTS.md (BENCH_ARGS=--quick: about 4 min)
	$(BIN)/python -m ops.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
