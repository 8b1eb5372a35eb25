# leadscore: `make run` serves every function locally, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
STAMP := $(VENV)/.installed

.PHONY: run test bench fuzz lint typecheck unit clean lock chromium wrk runtimes

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# `make run PORT=9000` serves on another port. The embedded database is in LEADSCORE_HOME
# (default ~/.local/share/leadscore), the same one every `leadscore` command reads.
run: $(STAMP)
	LEADSCORE_API_TOKEN=$${LEADSCORE_API_TOKEN:-local-dev-token} \
		$(BIN)/leadscore serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check shared functions tests bench infra

typecheck: $(STAMP)
	$(BIN)/mypy

# The runtime lock the bundle ships (hashed, one resolution for Python 3.11-3.13; no dev
# tools). Run after changing pyproject.toml's dependencies; commit requirements.lock.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra esp --universal --generate-hashes --python-version 3.11 \
		--quiet -o requirements.lock

# The Firestore emulator is started and stopped by tests/conftest.py (a session fixture),
# so it stops even when tests fail; LEADSCORE_REQUIRE_EMULATOR=1 turns "missing" into a failure.
# tests/infra/test_bundle.py installs the lock on Python 3.11, 3.12 and 3.13 (pyenv) into
# .venv-bundle-3.X, cached until requirements.lock changes.
test: lint typecheck chromium wrk
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory $(RUNTIMES:%=.venv-%/.installed)
	$(MAKE) --no-print-directory --jobs=2 --output-sync=target runtimes

# The deploy runtimes (infra/config.py: python312, the default, and python313) run a fast subset
# of the suite too: the domain, every entry point through the functions-framework test client,
# the SQLite and memory stores, the dashboard, the integrations and the cold-start import
# budgets (no emulator), with the runtime dependencies at the lock's versions (what the
# bundle ships). Each has its own .venv-3.X, rebuilt when pyproject.toml or the lock changes.
# A missing interpreter fails the run: the deployed code must have been tested on it.
# `make test` builds the venvs one after the other (each editable install writes
# shared/leadscore.egg-info in the checkout), then runs the two side by side (2 cores), each
# one's output in one piece. The dev install is constrained by the lock, so it cannot move a
# locked version.
RUNTIMES ?= 3.12 3.13
RUNTIME_TESTS ?= tests/unit tests/functional tests/integration tests/dashboard tests/integrations \
	tests/perf
# pyenv's own copy first (its shims refuse versions that are not selected), else pythonX.Y on PATH
runtime_python = $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python$(1)))),$(shell command -v python$(1)))

runtimes: $(addprefix runtime-,$(RUNTIMES))

.venv-%/bin/python:
	@test -n "$(call runtime_python,$*)" || { echo "Python $* is missing, and the deploy" \
		"runtime python$(subst .,,$*) must be tested: install it with 'pyenv install $*'" \
		"(or Debian's python$*), or put python$* on PATH." >&2; exit 1; }
	$(call runtime_python,$*) -m venv --without-pip .venv-$*

# (kept between runs: make would delete them as intermediate files of the pattern chain)
.PRECIOUS: .venv-%/bin/python .venv-%/.installed
.venv-%/.installed: pyproject.toml requirements.lock $(STAMP) | .venv-%/bin/python
	$(BIN)/uv pip install --quiet --python .venv-$*/bin/python --require-hashes -r requirements.lock
	$(BIN)/uv pip install --quiet --python .venv-$*/bin/python -c requirements.lock -e '.[dev]'
	touch $@

runtime-%: .venv-%/.installed chromium wrk
	.venv-$*/bin/python -m pytest -q -p no:cacheprovider -m 'not firestore and not emulator' \
		$(RUNTIME_TESTS)

# A Debian package, installed when its command is missing (the index refreshed only if needed).
define apt_install
	@command -v $(1) >/dev/null 2>&1 || { \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1) || { \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(1); }; }
endef

# The browser test (tests/tracking/test_browser.py) drives Debian's headless Chromium.
chromium:
	$(call apt_install,chromium)

# The benchmarks' C load generator (bench/clients.py); tests/perf checks it sends each request once.
wrk:
	$(call apt_install,wrk)

# The long fuzz profile: thousands of mutated requests per endpoint.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/hardening -k fuzz

bench: $(STAMP) wrk
	$(BIN)/python -m bench

# The data folder (LEADSCORE_HOME, outside the checkout by default) is never removed here.
clean:
	rm -rf $(VENV) .venv-bundle-* .venv-3.* .pytest_cache .mypy_cache .ruff_cache
