# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A real Keystone for the OpenStack tests, in its own venv: its pins stay apart.
KEYSTONE_VENV ?= .venv-keystone
# Azurite (Azure Storage's emulator) for the Azure Blob tests, from npm. Pinned:
# later versions need Node >= 21.
AZURITE := .azurite/node_modules/.bin/azurite-blob

.PHONY: install libvirt run test lint clean

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

# npm's first install into a fresh checkout has been seen to leave out the
# packages' dist/ directories (Azurite then cannot start); it is checked and
# repeated once.
AZURITE_CHECK := .azurite/node_modules/@azure/ms-rest-js/dist/msRest.node.js
$(AZURITE):
	@if command -v npm >/dev/null; then \
		for attempt in 1 2; do \
			rm -rf .azurite; \
			npm install --silent --no-audit --no-fund --prefix .azurite azurite@3.35.0; \
			if [ -f $(AZURITE_CHECK) ]; then break; fi; \
			echo "npm left Azurite incomplete; installing again"; \
		done; \
		[ -f $(AZURITE_CHECK) ] || { rm -rf .azurite; echo "Azurite could not be installed"; }; \
	else echo "npm is missing: the Azure Blob tests will be skipped"; fi

# libvirt-python compiles against the host's libvirt (Debian: libvirt-dev and
# pkg-config, which .ci/run installs); without them the libvirt tests skip.
libvirt: install
	@$(BIN)/pip install -q -e ".[libvirt]" 2>/dev/null || \
		echo "libvirt-python could not be built (apt-get install libvirt-dev pkg-config): the libvirt tests will be skipped"

# Install, lint, type-check and run the whole test suite.
test: install libvirt $(KEYSTONE_VENV)/bin/keystone-manage $(AZURITE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(KEYSTONE_VENV) .azurite build *.egg-info .pytest_cache .mypy_cache .ruff_cache
