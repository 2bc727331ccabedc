# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
# Each sets up its own virtual environment on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup browser clean

$(BIN)/sketchgen: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/sketchgen

demo: setup
	$(BIN)/sketchgen demo

# tests/test_browser.py drives Debian's chromium; as root (CI) install it where missing, else the test skips.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# Two workers of one thread each, one per core of CI's 2; a test file stays on one worker, so its module's
# fixtures (a trained model, the Node runs of @magenta/sketch) are built once.
test: setup browser
	$(BIN)/python -m pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs
