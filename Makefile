# Two entry points for a fresh machine (Python 3.11, root):
#   make run   install the node and run it on its embedded defaults
#   make test  install what the tests need (Debian packages too) and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13.0 is on disk here; an unpinned torch would pull CUDA packages.
TORCH := torch==2.13.0

.PHONY: run test install install-dev system-packages lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH) -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q $(TORCH) -e '.[dev]'

system-packages:
	bash scripts/install-system-packages.sh

run: install
	$(BIN)/blsnode serve

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

test: system-packages install-dev lint typecheck pytest

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
