# mesh: `make run` builds the example mesh on DuckDB; `make test` runs the tests; `make dev` opens the UI.
VENV := .venv
BIN := $(VENV)/bin
# The interpreter the venv is made from: PYTHON if given, else the first of these within requires-python
# (3.11 to 3.13): python3 first, so a machine's default Python is used when it fits.
PYTHON_CANDIDATES := python3 python3.13 python3.12 python3.11
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell command -v $(p) >/dev/null 2>&1 && \
	$(p) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null && echo $(p))))
endif
SCALE ?= 10000
# The environment (docs/environments.md): default `dev`; `MESH_ENV=prod make run` publishes to prod.
# Each has its own warehouse storage, data folder and Dagster instance (runs and alerts never mix).
MESH_ENV ?= dev
export MESH_ENV
export DAGSTER_HOME := $(CURDIR)/.dagster_home/$(MESH_ENV)

.PHONY: setup run test check dev bench validate lint clean

$(BIN)/.installed: pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11, 3.12 or 3.13 found (tried $(PYTHON_CANDIDATES)): \
	install one (e.g. apt-get install python3) or name it: make PYTHON=/path/to/python3.12 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# requirements.lock pins every transitive version CI and laptops install.
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,postgres]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

setup: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/mesh prepare

run: setup
	@test -f data/sources/_manifest.json || $(BIN)/mesh generate --scale $(SCALE)
	$(BIN)/mesh run
	$(BIN)/mesh contract export

validate: setup
	$(BIN)/mesh validate
	$(BIN)/mesh fitness --specs-only
	$(BIN)/dagster definitions validate -w workspace.yaml

lint: $(BIN)/.installed
	$(BIN)/ruff check .

# Three workers on two cores: the long tests mostly wait (dbt and code-server subprocesses, daemon ticks),
# so a third worker fills that time (measured: 10m59s vs 12m48s for -n 2).
test: setup lint validate
	$(BIN)/pytest -n 3 --dist loadfile --no-loadscope-reorder

# The edit loop: lint and the tests not marked slow (the end-to-end builds run in `make test`). No long
# file to schedule around here, so tests, not files, are spread over the workers (measured on 2 cores:
# 1m53s for `-n 3 --dist load`, 2m01s with `-n 4`, 2m22s with `-n 3 --dist loadfile`).
check: setup lint
	$(BIN)/pytest -n 3 --dist load -q -m "not slow"

dev: setup
	$(BIN)/dagster dev -w workspace.yaml

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf data .dagster_home dbt_projects/*/target
