# The two commands of the README: `make up` runs the platform, `make test` runs the suite.
# Both create the virtual environment and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up demo test lint format bench schemas clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/ekatalog up $(ARGS)

demo: install
	$(BIN)/ekatalog demo $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy shared services ekatalog

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: install
	$(BIN)/ekatalog schemas --out docs

bench: install
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/http_paths.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
