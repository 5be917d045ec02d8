# loopwright: `make demo` runs the whole loop on the built-in digits task;
# `make test` runs every test (unit, and integration against real servers).
# Both set up on first use: the project venv in .venv/ and Label Studio's own
# venv in .venv-labelstudio/ (its pins clash with Prefect's).

PYTHON ?= python3
VENV := .venv
LS_VENV := .venv-labelstudio
ARGS ?=
# extra pytest options of `make test` (both runs), e.g. PYTEST_ARGS="-x"
PYTEST_ARGS ?=

.PHONY: setup setup-system demo demo-online test test-unit lint format labelstudio-up labelstudio-down prefect-up prefect-down s3-up s3-down clean-home

setup: setup-system $(VENV)/.installed $(LS_VENV)/.installed

# Debian packages the tests need, each installed only when missing (CI starts on a fresh
# machine), with one apt-get update: PostgreSQL binaries for scripts/postgres.sh (Prefect on
# PostgreSQL, docs/scale-out.md), and Chromium for the browser tests (Playwright drives
# /usr/bin/chromium: `playwright install` downloads its own browser, which CI cannot).
setup-system:
	@set -e; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); updated=""; \
	if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  $$SUDO apt-get update -q; updated=1; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi; \
	if ! test -x /usr/bin/chromium; then \
	  [ -n "$$updated" ] || $$SUDO apt-get update -q; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

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

# `make demo` is online now (serve-model in front of the stream, every promotion rolled out:
# [demo] rollout = true); demo-online is kept as an alias for earlier instructions
demo-online: demo

# Every test, in two runs: unit tests on 2 pytest-xdist workers (measured 243 s -> 91 s on
# 2 cores), then integration and reliability on 2 workers too, by group (tests/conftest.py):
# the demo run's tests on one worker, the Label Studio server's on one, each started once,
# the two heaviest groups first, one per worker (--no-loadscope-reorder keeps that order).
# Most of their time is one training or one server at a time: one process left a core idle.
# Both runs run even when the first fails.
test: setup
	@status=0; \
	$(VENV)/bin/pytest -q -n 2 $(PYTEST_ARGS) tests/unit || status=1; \
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup --no-loadscope-reorder --durations=15 \
	  $(PYTEST_ARGS) tests/integration tests/reliability || status=1; \
	exit $$status

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

# the S3 stand-in (moto on 127.0.0.1:$${S3_PORT:-55900}, bucket loopwright) for
# `[storage] logs_url = "s3://loopwright/..."` with `endpoint_url = "http://127.0.0.1:55900"`
s3-up: $(VENV)/.installed
	scripts/s3.sh start

s3-down:
	scripts/s3.sh stop
