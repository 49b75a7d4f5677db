# Two entry points: `make run` (the daemon on embedded defaults) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install

$(BIN)/monitor: pyproject.toml setup.py monitor/core/matcher.py monitor/core/stance.py \
		monitor/core/engine.py monitor/core/firing.py monitor/core/_stance_native.pyx \
		monitor/core/_sentences_native.pyx monitor/core/_slots_native.pyx \
		monitor/core/_matcher_native.pyx monitor/core/_tuples.pxi
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/monitor

install: $(BIN)/monitor

run: install
	$(BIN)/monitor run

test: install
	bash scripts/ensure-postgres
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
