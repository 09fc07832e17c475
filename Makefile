# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make run` installs the package and what serving needs; `make test` adds the test tools and
# the extras the suite exercises (MetricFlow as the reference, PostgreSQL and Spark warehouses).
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench clean screenshots

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e ".[test,metricflow,postgres,spark,lint]"
	touch $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/northstar serve

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

# Linters (CI runs them before the tests): Python lint and format, types of the engine, the
# dbt project's SQL.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd dbt_project && ../$(BIN)/sqlfluff lint models macros

# The web app's screenshots in docs/screenshots/, taken by its browser tests on the sample.
screenshots: $(TEST_STAMP)
	NORTHSTAR_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/api/app

bench: $(TEST_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf data dbt_project/target dbt_project/logs
