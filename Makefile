# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm writes node_modules/.package-lock.json on every install: the browser assets' stamp.
NODE_STAMP := node_modules/.package-lock.json

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Microsoft's Adaptive Cards renderer and axe-core, pinned by package-lock.json, served locally.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

## Run the main job on the embedded default (SQLite, the local Microsoft 365 sandbox).
demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/m365perf validate flows/
	$(BIN)/m365perf demo --auto

## Run the whole test suite: lint, types, layering, tests on SQLite and PostgreSQL.
test: $(STAMP) $(NODE_STAMP)
	bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
