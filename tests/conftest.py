"""Session-wide fixtures: one Prefect test harness for every flow test (Prefect's own advice),
and one real `loopwright demo` run for every test that inspects what a demo did."""

from __future__ import annotations

import os

import pytest

from tests.support import DemoRun, run_demo

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect server and database for flow runs in tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """`loopwright demo` on scenarios/tiny.toml, run once (several minutes) and shared by the
    demo's own tests (tests/integration/test_demo_cli.py) and the secrets tests
    (tests/reliability/test_secrets.py). Tests read it; none may change its folders."""
    return run_demo(tmp_path_factory.mktemp("demo"))
