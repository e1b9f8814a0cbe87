# Interview Buddy — the commands of the README's quick start, and the benchmarks:
#   make demo   set up .venv and the hub's proxy, then run the JupyterHub demo
#               (make demo PORT=9000 picks its port; internal ports follow it)
#   make test   set up .venv with the test extras and run the whole suite
#   make bench  the performance benchmarks of issue 14 and their targets (benchmarks/)
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

# The candidate workspace's JupyterLab extension (labextension/): built with npm from its
# lockfile into the package, and linked into .venv as `jupyter labextension develop` does
# (the wheel ships the same build under share/jupyter/labextensions).
LABEXT      := ib_extension/candidate/labextension
LABEXT_DEST := $(VENV)/share/jupyter/labextensions/@interview-buddy/workspace

.PHONY: demo test install install-test labextension browser sandbox proxy lint lint-only bench clean

$(BIN)/python:
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  echo "Installing python3-venv..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python proxy
	$(BIN)/pip install --quiet -e .
	@$(MAKE) --no-print-directory labextension

install-test: $(BIN)/python proxy
	$(BIN)/pip install --quiet -e ".[test]"
	@$(MAKE) --no-print-directory labextension

labextension: $(LABEXT)/package.json
	@mkdir -p $(dir $(LABEXT_DEST)) && rm -rf $(LABEXT_DEST) && ln -s $(CURDIR)/$(LABEXT) $(LABEXT_DEST)

$(LABEXT)/package.json: labextension/package.json labextension/package-lock.json labextension/src/*.js labextension/style/*.css
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Node.js and npm to build the workspace's JupyterLab extension..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd labextension && npm ci --no-audit --no-fund --loglevel=error
	cd labextension && JUPYTERLAB_STAGING="$$(../$(BIN)/python -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" \
	  npm run build --silent >/dev/null

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

# Issue 14's benchmarks (benchmarks/README.md): overhead, concurrency, burst and scale in
# one run, then one table of the targets. LiteLLM, the gateway they are compared with, gets
# a virtualenv of its own (about 750 MB, once); if it cannot be installed they run without it.
# make bench BENCH_ARGS=--quick  checks that everything works in a few minutes.
BENCH_LITELLM := .venv-bench-litellm
BENCH_STAMP   := $(BENCH_LITELLM)/.installed

$(BENCH_STAMP):
	@rm -rf $(BENCH_LITELLM)
	$(PYTHON) -m venv $(BENCH_LITELLM)
	@if $(BENCH_LITELLM)/bin/pip install --quiet --upgrade pip && \
	   $(BENCH_LITELLM)/bin/pip install --quiet 'litellm[proxy]'; then touch $@; else \
	  rm -rf $(BENCH_LITELLM); echo "LiteLLM could not be installed: the benchmarks run without it."; fi

bench: install-test $(BENCH_STAMP)
	$(BIN)/python benchmarks/all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_LITELLM) node_modules .ib-data .ib-demo .ib-hub test-artifacts labextension/node_modules $(LABEXT)
