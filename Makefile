# Interview Buddy — the two commands of the README's quick start:
#   make demo   set up .venv and run the demo on embedded defaults
#   make test   set up .venv with the test extras and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The candidate workspace's JupyterLab extension (labextension/): built with npm from its
# lockfile into the package, and linked into .venv as `jupyter labextension develop` does
# (the wheel ships the same build under share/jupyter/labextensions).
LABEXT      := ib_extension/candidate/labextension
LABEXT_DEST := $(VENV)/share/jupyter/labextensions/@interview-buddy/workspace

.PHONY: demo test install install-test labextension browser sandbox lint lint-only bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@$(MAKE) --no-print-directory labextension

install-test: $(BIN)/python
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
	$(BIN)/ib demo

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
	rm -rf $(VENV) .ib-data .ib-demo test-artifacts labextension/node_modules $(LABEXT)
