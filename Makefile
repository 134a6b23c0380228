# Two commands do all the set-up: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the version of the CPU wheel (2.13.0+cpu) that pip finds in this
	# machine's local wheel folder (its find-links): ==2.13.0 matches it, and its "+cpu" sorts
	# above PyPI's 2.13.0. Unpinned, pip would take a newer torch from an index, a multi-GB
	# CUDA build; installed first, it already meets ".[dev]"'s torch>=2.6 and is kept. This
	# names no index: on a machine without that wheel it installs PyPI's 2.13.0, a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# An editable install leaves our modules uncompiled, and where PYTHONDONTWRITEBYTECODE is
	# set (as on our machines) every command would compile them again (~50 ms a start).
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/filmdata demo --root $(or $(ROOT),filmdata-data)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) filmdata-data
