# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Data Docs pages' scripts, styles and fonts, from npm (assets/package-lock.json): served from the
# project, never from a CDN.
ASSETS_STAMP := assets/node_modules/.installed

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false

.PHONY: install demo test lint mutation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS_STAMP): assets/package.json assets/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the Data Docs assets: install Node.js (e.g. apt-get install npm)"; exit 1; }
	npm ci --prefix assets --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(ASSETS_STAMP)

install: $(STAMP) $(ASSETS_STAMP)

## Run the whole pipeline on the bundled sample site into ./data/warehouse.db and show the result.
demo: install
	$(BIN)/newsflow demo

## Run the whole test suite (PostgreSQL tests run when NEWSFLOW_TEST_POSTGRES_URL is set).
# Three workers on two cores: the suite spends most of its time waiting (Prefect servers starting, runs through
# subprocesses, real HTTP servers), about 40 % of one core when run serially. Tests sharing a costly module
# fixture are kept on one worker by their xdist_group mark.
TEST_WORKERS ?= 3
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

## Mutation check of the safeguard modules, one at a time against their own tests: kill rate per module.
mutation: $(STAMP)
	$(BIN)/python tests/mutation.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache assets/node_modules .mutation
