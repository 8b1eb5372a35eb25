# leadscore: `make run` serves every function locally, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
STAMP := $(VENV)/.installed

.PHONY: run test bench fuzz lint typecheck unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	LEADSCORE_API_TOKEN=$${LEADSCORE_API_TOKEN:-local-dev-token} \
		$(BIN)/leadscore serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check shared functions tests bench infra

typecheck: $(STAMP)
	$(BIN)/mypy

# The Firestore emulator is started and stopped by tests/conftest.py (a session fixture),
# so it stops even when tests fail; LEADSCORE_REQUIRE_EMULATOR=1 turns "missing" into a failure.
test: lint typecheck
	$(BIN)/python -m pytest

# The long fuzz profile: thousands of mutated requests per endpoint.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/hardening -k fuzz

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .leadscore .pytest_cache .mypy_cache .ruff_cache
