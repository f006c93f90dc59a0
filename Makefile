# opsworks-trail: the command surface. `make help` lists the targets.
# Other targets live in make/*.mk (stack: build/validate/deploy; invoke; bench), included below.

SHELL       := /bin/bash
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
# The first Python 3.11+ on PATH (or pyenv's), unless PYTHON is given.
PYTHON      ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
                 command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
                 && { echo $$p; break; }; done)

.DEFAULT_GOAL := help
.PHONY: help setup test browser lint typecheck pytest fuzz demo local-db local-db-stop catalog wheel clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## Build .venv (Python 3.11+) with the project, the CLI and the test tools

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

test: lint typecheck pytest ## Every check: ruff, mypy, and all tests (DynamoDB Local and browser tiers included)

pytest: $(STAMP) browser
	$(PY) -m pytest

browser: $(STAMP) ## Chromium for the browser tier: the machine's, else fetched once from npm (tests/browser_setup.py)
	$(PY) tests/browser_setup.py

fuzz: $(STAMP) ## The fuzz tiers (marker fuzz), more examples: FUZZ_EXAMPLES=200 hostile, READER_FUZZ_EXAMPLES=3000 reader
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} READER_FUZZ_EXAMPLES=$${READER_FUZZ_EXAMPLES:-3000} $(PY) -m pytest -m fuzz

lint: $(STAMP) ## ruff, and the import directions between the package's folders (import-linter)
	$(VENV)/bin/ruff check src tests scripts workshop bench
	PYTHONPATH=src:. $(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP) ## mypy --strict on src/ and workshop/
	$(VENV)/bin/mypy

demo: $(STAMP) ## Ingest a generated trail bucket into the persistent DynamoDB Local (started if need be) and report
	$(PY) -m workshop.demo

local-db: $(STAMP) ## Start DynamoDB Local in the background, data kept in ~/.cache/opsworks-trail/dynamodb-local/data
	$(VENV)/bin/opsworks-trail local start

local-db-stop: $(STAMP) ## Stop the background DynamoDB Local (its data stay on disk)
	$(VENV)/bin/opsworks-trail local stop

catalog: $(STAMP) ## Re-derive src/core/ingest/catalog.json from ../shared/reference/opsworks-api
	$(PY) scripts/build_catalog.py

wheel: $(STAMP) ## Build the installable wheel into dist/ (pip install dist/*.whl; add [cli] for progress bars)
	rm -rf build/lib dist  # setuptools would pack a module deleted since the last build
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .

clean: ## Remove the venv, caches and build output
	rm -rf $(VENV) .cache .aws-sam .pytest_cache .mypy_cache .ruff_cache demo-bucket bench-data build dist

-include make/*.mk
