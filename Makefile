# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
# Each sets up its own virtual environment on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

$(BIN)/sketchgen: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/sketchgen

demo: setup
	$(BIN)/sketchgen demo

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
