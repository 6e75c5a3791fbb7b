# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A real Keystone for the OpenStack tests, in its own venv: its pins stay apart.
KEYSTONE_VENV ?= .venv-keystone

.PHONY: install run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=68" wheel

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[test,lint,postgresql]"

$(KEYSTONE_VENV)/bin/keystone-manage:
	$(PYTHON) -m venv $(KEYSTONE_VENV)
	$(KEYSTONE_VENV)/bin/pip install -q keystone gunicorn

# Install, then start the all-in-one service on its embedded defaults.
run: install
	$(BIN)/overcast-all-in-one

# Install, lint, type-check and run the whole test suite.
test: install $(KEYSTONE_VENV)/bin/keystone-manage
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(KEYSTONE_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
