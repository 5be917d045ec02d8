# loopwright: `make demo` runs the whole loop on the built-in digits task;
# `make test` runs every test (unit, and integration against real servers).
# Both set up on first use: the project venv in .venv/ and Label Studio's own
# venv in .venv-labelstudio/ (its pins clash with Prefect's).

PYTHON ?= python3
VENV := .venv
LS_VENV := .venv-labelstudio
ARGS ?=

.PHONY: setup demo test test-unit lint format labelstudio-up labelstudio-down prefect-up prefect-down clean-home

setup: $(VENV)/.installed $(LS_VENV)/.installed

# torch first and pinned: an open range would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[dev]"
	$(VENV)/bin/pip check
	touch $@

$(LS_VENV)/.installed: scripts/labelstudio.sh
	LS_VENV=$(LS_VENV) scripts/labelstudio.sh install
	touch $@

demo: setup
	$(VENV)/bin/loopwright demo $(ARGS)

test: setup
	$(VENV)/bin/pytest -q tests

test-unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q -m "not integration and not slow" tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

labelstudio-up: $(LS_VENV)/.installed
	scripts/labelstudio.sh start

labelstudio-down:
	scripts/labelstudio.sh stop

prefect-up: $(VENV)/.installed
	scripts/prefect_server.sh start

prefect-down:
	scripts/prefect_server.sh stop
