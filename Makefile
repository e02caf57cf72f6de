# Postroom: `make run` starts it, `make test` runs every test. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

POSTROOM_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postroom
export POSTROOM_TEST_POSTGRES_URL
POSTROOM_TEST_MARIADB_URL ?= mysql://root@127.0.0.1:3306/
export POSTROOM_TEST_MARIADB_URL
PYTEST_WORKERS ?= 2
export PYTEST_WORKERS

.PHONY: run test test-postgres bench lint check-python clean

run: $(VENV)/.installed-run
	$(BIN)/postroom run

# The whole suite on SQLite, then the outbox's on PostgreSQL (many workers, SKIP LOCKED), each
# in PYTEST_WORKERS processes (pytest-xdist): most tests wait on sockets, so two processes
# finish the suite about a fifth sooner even on two cores.
test: $(VENV)/.installed-dev
	bash scripts/test-prereqs
	PYTHON=$(BIN)/python bash scripts/check-python
	PYTHON=$(BIN)/python bash scripts/check-postgres
	PYTHON=$(BIN)/python bash scripts/check-mariadb
	$(BIN)/pytest -n $(PYTEST_WORKERS)
	$(MAKE) --no-print-directory test-postgres
	@echo "Screenshots of the pages the browser tests saw: $(CURDIR)/test-screenshots"

test-postgres: $(VENV)/.installed-dev
	POSTROOM_DATABASE_URL=$(POSTROOM_TEST_POSTGRES_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) tests/outbox tests/webhooks \
	  tests/api/test_idempotency_race.py tests/reports/test_scheduler.py

# The whole suite again on CPython 3.12 and 3.13 (SQLite), each in its .venv-3.X; CI runs it
# after `make test`. TESTS narrows it: make test-pythons TESTS=tests/mail. See scripts/test-pythons.
.PHONY: test-pythons
test-pythons:
	bash scripts/test-prereqs
	bash scripts/test-pythons $(TESTS)

bench: $(VENV)/.installed-dev
	bash scripts/test-prereqs
	$(BIN)/python -m bench.outbox

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check postroom tests bench
	$(BIN)/ruff format --check postroom tests bench
	$(BIN)/mypy postroom

check-python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Postroom needs Python 3.11 or newer"' \
	  || { echo "Postroom needs python3 >= 3.11 (found: $$($(PYTHON) --version 2>&1))."; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null \
	  || { echo "python3 cannot create virtual environments: install python3-venv (apt-get install python3-venv)."; exit 1; }

$(VENV)/.created: | check-python
	$(PYTHON) -m venv $(VENV)
	@touch $@

$(VENV)/.installed-run: pyproject.toml $(VENV)/.created
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.created
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
