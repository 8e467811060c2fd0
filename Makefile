# SPBE Monitor. `make run` builds and publishes the warehouse; `make test` runs the whole test suite.
SHELL := /bin/bash
UV_VERSION := 0.13.9
PYTHON ?= python3
TOOLS := .tools
VENV := .venv
UV := $(TOOLS)/bin/uv

export SPBE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(SPBE_DATA_DIR)/dagster_home
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install postgres chromium clients run test test-fast lint ui bench clean docs

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The environment is rebuilt only when the lock file or pyproject change.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra dev --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.synced

run: install
	$(VENV)/bin/spbe build

# tests/test_postgres.py starts a real PostgreSQL server: Debian's package, installed once when missing (as
# root, from Debian's registry). Where it cannot be installed, that test is skipped and says why.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  echo "PostgreSQL could not be installed: tests/test_postgres.py will be skipped"

# tests/test_scorecards.py opens the scorecards in headless Chromium: Debian's package, installed once when
# missing (as root), driven by Playwright from PyPI. Playwright never downloads a browser of its own here.
chromium:
	@command -v chromium >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "Chromium could not be installed: the browser tests in tests/test_scorecards.py will be skipped"

# tests/test_duckdb_clients.py opens the published file with older DuckDB clients, each from PyPI in an
# isolated environment of its own (the CLI, duckdb-cli, is a dev dependency in .venv).
OLD_DUCKDB_VERSIONS := 0.10.3 1.1.3
clients: $(UV)
	@for v in $(OLD_DUCKDB_VERSIONS); do [ -x $(TOOLS)/duckdb-$$v/bin/python ] || \
	  { $(UV) venv -q --python $(PYTHON) $(TOOLS)/duckdb-$$v && \
	    VIRTUAL_ENV=$(TOOLS)/duckdb-$$v $(UV) pip install -q "duckdb==$$v"; } || exit 1; done

# Three workers on 2 cores (many tests wait on subprocesses, servers and locks: with three, the CPUs were 82%
# busy); a test file stays on one worker, so its module fixtures are built once. The shared warehouse is built
# once per run, by the first worker to need it (tests/conftest.py).
test: install postgres chromium clients
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder

# The inner loop: the tests that build no warehouse and start no server (about 30 s on 2 cores).
test-fast: install
	$(VENV)/bin/pytest -n 2 --dist loadfile -m "not slow"

# ruff, then Dagster's own check that the code location loads (`dg check defs`, as `dg dev` would load it).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/dg check defs

ui: install
	$(VENV)/bin/spbe ui

# Benchmarks (docs/performance.md): `make bench`, or `make bench TIERS=national REPEAT=1`.
TIERS ?= tiny small
REPEAT ?= 3
bench: install
	for tier in $(TIERS); do $(VENV)/bin/spbe bench --tier $$tier --repeat $(REPEAT) || exit 1; done

# The catalog as one self-contained page, data/reports/dbt-docs.html (`spbe build` writes it too).
docs: install
	cd dbt && ../$(VENV)/bin/dbt docs generate --static --profiles-dir . && mkdir -p $(SPBE_DATA_DIR)/reports && \
	  cp target/static_index.html $(SPBE_DATA_DIR)/reports/dbt-docs.html

clean:
	rm -rf data/archive data/quarantine data/lake data/state data/warehouse data/dagster_home data/bench data/reports data/exports \
	  dbt/target dbt/logs
