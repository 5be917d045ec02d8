"""Session-wide fixtures: one Prefect test harness for every flow test (Prefect's own advice),
one real Label Studio server for every suite that talks to one, and one real `loopwright
demo` run for every test that inspects what a demo did."""

from __future__ import annotations

import os

import pytest

from tests.support import DemoRun, LSServer, run_demo, start_ls_server

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


#: Groups that share a costly session resource, heaviest first: pytest-xdist hands them out
#: in this order (`--no-loadscope-reorder`), so that the two longest start at once on the two
#: workers instead of one of them trailing at the end.
SHARED_GROUPS = ("demo", "labelstudio")


def _shared_group(item: pytest.Item) -> str | None:
    if "demo_run" in item.fixturenames:
        return "demo"
    if "ls_server" in item.fixturenames:
        return "labelstudio"
    return None


def _tag_node_id(item: pytest.Item, group: str) -> None:
    """Give the item the node id `--dist loadgroup` schedules by (`<id>@<group>`).

    Why here: pytest-xdist 3.8 appends the group to `item._nodeid`, which pytest 9.2 no longer
    reads (the id is `item._id`), so every group was silently ignored and a group's tests were
    spread over both workers (the demo ran twice). pytest-xdist's own tagging, if it works
    again one day, then adds a second `@<group>`; the scheduler keeps the last one."""
    nodeid = f"{item.nodeid}@{group}"
    if hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        item._nodeid = nodeid


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests that share a costly session resource on one pytest-xdist worker, so that
    each starts once: every module with a test of the demo run in group "demo", every module
    with a Label Studio test in group "labelstudio". A whole module joins its group, so its
    module fixtures are built once and its ordered stories stay in order; other integration
    and reliability modules are a group each; unit tests go wherever a worker is free.
    Then the shared groups move to the front (a stable sort: order within a group is kept),
    so that they start first, one per worker."""
    module_group: dict[str, str] = {}
    for item in items:
        group = _shared_group(item)
        key = str(item.path)
        if group and module_group.get(key) != "demo":  # a demo module stays with the demo
            module_group[key] = group
    for item in items:
        if item.get_closest_marker("xdist_group") or "unit" in item.path.parts:
            continue
        group = module_group.get(str(item.path)) or (
            item.module.__name__ if item.module else item.path.name
        )
        item.add_marker(pytest.mark.xdist_group(group))
        if getattr(config.option, "loadgroup", False):  # an xdist worker, --dist loadgroup
            _tag_node_id(item, group)

    def rank(item: pytest.Item) -> int:
        marker = item.get_closest_marker("xdist_group")
        name = (marker.kwargs.get("name") or (marker.args or [""])[0]) if marker else ""
        return SHARED_GROUPS.index(name) if name in SHARED_GROUPS else len(SHARED_GROUPS)

    items.sort(key=rank)


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
