"""Session-wide fixtures: one Prefect test harness for every flow test (Prefect's own advice),
one real Label Studio server for every suite that talks to one, and one real `loopwright
demo` run for every test that inspects what a demo did."""

from __future__ import annotations

import os

import pytest

from tests.support import DemoRun, LSServer, run_demo, start_ls_server

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep tests that share a costly session resource on one pytest-xdist worker, so that
    each starts once: every test of the demo run in group "demo", every Label Studio test in
    group "labelstudio". Other integration and reliability tests run with their module (its
    fixtures and ordered stories stay together); unit tests go wherever a worker is free."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if "demo_run" in item.fixturenames:
            group = "demo"
        elif "ls_server" in item.fixturenames:
            group = "labelstudio"
        elif "unit" in item.path.parts:
            continue
        else:
            group = item.module.__name__ if item.module else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect server and database for flow runs in tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory) -> LSServer:
    """One Label Studio server for the session (its start is the slowest of our servers),
    on LOOPWRIGHT_TEST_LS_PORT (default 8091) with its own data dir under pytest's tmp dir,
    so it never touches a demo's server or data. Tests make their own projects; the outage
    tests stop and restart it through scripts/labelstudio.sh, as an operator would."""
    try:
        server = start_ls_server(tmp_path_factory.mktemp("labelstudio"))
    except RuntimeError as exc:
        pytest.fail(f"cannot start Label Studio: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def labelstudio(ls_server) -> tuple[str, str]:
    """(url, token) of the session's Label Studio server."""
    return ls_server.url, ls_server.token


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """`loopwright demo` on scenarios/tiny.toml, run once (several minutes) and shared by the
    demo's own tests (tests/integration/test_demo_cli.py) and the secrets tests
    (tests/reliability/test_secrets.py). Tests read it; none may change its folders."""
    return run_demo(tmp_path_factory.mktemp("demo"))
