# Interview Buddy — the two commands of the README's quick start:
#   make demo   set up .venv and the hub's proxy, then run the JupyterHub demo
#               (make demo PORT=9000 picks its port; internal ports follow it)
#   make test   set up .venv with the test extras and run the whole suite
# Debian's python when there is one: under `ib hub` as root each candidate's server runs
# as its own system user from this same .venv, and a python under /root (pyenv) is not
# executable by them (NOTES.md).
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8000
# npm's own record of an install, newer than package-lock.json once `npm ci` has run
PROXY_STAMP := node_modules/.package-lock.json

.PHONY: demo test install install-test browser sandbox proxy lint lint-only bench clean

$(BIN)/python:
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  echo "Installing python3-venv..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python proxy
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python proxy
	$(BIN)/pip install --quiet -e ".[test]"

# JupyterHub's proxy, configurable-http-proxy, pinned in package-lock.json (README: why npm).
proxy: $(PROXY_STAMP)

$(PROXY_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Node.js and npm for the hub's proxy..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error

# Browser tests drive Debian's Chromium through Playwright; never a downloaded browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Grading runs candidates' code in a bubblewrap sandbox; without it the service refuses
# to grade. setpriv (util-linux) drops the sandbox to the grading user when run as root.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  echo "Installing bubblewrap for the grading sandbox..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap >/dev/null; }

demo: install sandbox
	$(BIN)/ib hub --demo --port $(PORT)

test: install-test browser sandbox lint-only
	$(BIN)/pytest

lint: install-test lint-only

# Style (ruff) and the package's layers (import-linter, contracts in pyproject.toml).
lint-only:
	$(BIN)/ruff check ib_extension tests benchmarks
	$(BIN)/lint-imports

bench: install-test
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) node_modules .ib-data .ib-demo .ib-hub test-artifacts
