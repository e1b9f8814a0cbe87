# Interview Buddy — the two commands of the README's quick start:
#   make demo   set up .venv and run the demo on embedded defaults
#   make test   set up .venv with the test extras and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install install-test browser lint lint-only bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

# Browser tests drive Debian's Chromium through Playwright; never a downloaded browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

demo: install
	$(BIN)/ib demo

test: install-test browser lint-only
	$(BIN)/pytest

lint: install-test lint-only

# Style (ruff) and the package's layers (import-linter, contracts in pyproject.toml).
lint-only:
	$(BIN)/ruff check ib_extension tests benchmarks
	$(BIN)/lint-imports

bench: install-test
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) .ib-data .ib-demo test-artifacts
