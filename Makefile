# Two entry points for a fresh machine (Python 3.11, root):
#   make run   install the node and run it on its embedded defaults
#   make test  install what the tests need (Debian packages too) and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13.0 is on disk here; an unpinned torch would pull CUDA packages.
TORCH := torch==2.13.0

.PHONY: run test install install-dev system-packages lint typecheck pytest smoke-wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH) -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q $(TORCH) -e '.[dev]'

system-packages:
	bash scripts/install-system-packages.sh
	bash scripts/install-ohif.sh

run: install
	$(BIN)/blsnode serve

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

# The product as a user gets it from a wheel: built, installed into a fresh environment,
# and one hand radiograph processed there by 'blsnode serve' (scripts/smoke_job.py).
WHEEL_DIR := build/wheel
WHEEL_VENV := build/wheel-venv
smoke-wheel: $(BIN)/python
	rm -rf $(WHEEL_DIR) $(WHEEL_VENV)
	$(BIN)/pip wheel -q --no-deps -w $(WHEEL_DIR) .
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q $(TORCH) $(WHEEL_DIR)/*.whl
	$(WHEEL_VENV)/bin/python scripts/smoke_job.py

test: system-packages install-dev lint typecheck pytest smoke-wheel

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
