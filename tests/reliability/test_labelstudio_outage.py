"""Fault 3: the Label Studio server is stopped in the middle of `curate` and of `sync-labels`.
The adapter retries with back-off (the one retry layer: Prefect does not retry on top), then
the flow fails with a message that says what to do; once the server is back, rerunning them
leaves every selected sample in Label Studio exactly once and every annotation in the label
log exactly once.

The server is this suite's own (`ls_server`), stopped and restarted through
scripts/labelstudio.sh exactly as an operator would."""

from __future__ import annotations

import json
import time
from collections import Counter

import pyarrow.dataset as ds
import pytest

import curation.labelstudio as lsmod
from curation.labelstudio import LabelStudioAdapter, LabelStudioError
from curation.labelstudio_annotate import AnnotatingAdapter
from tests.reliability.conftest import log_digits, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUDGET = 30
CHUNK = 10  # tasks per import request, so that the outage falls between two requests


@pytest.fixture(scope="module")
def outage(tmp_path_factory, ls_server, prefect_harness):
    root = tmp_path_factory.mktemp("outage")
    cfg = write_config(root / "loopwright.toml", root / "home", ls_server.url)
    log_digits(cfg, 120)
    return {"cfg": str(cfg), "root": root, "server": ls_server, "log": []}


@pytest.fixture
def token(monkeypatch, ls_server):
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", ls_server.token)


def stop_after(monkeypatch, server, call_prefix: str, nth: int, log: list) -> None:
    """Stop the real server right after the `nth` adapter call whose description starts
    with `call_prefix` returns; record every back-off sleep of the adapter."""
    real_call, real_sleep = LabelStudioAdapter._call, lsmod._sleep
    seen = Counter()

    def call(self, what, fn, creates=False):
        out = real_call(self, what, fn, creates)
        if what.startswith(call_prefix):
            seen[call_prefix] += 1
            if seen[call_prefix] == nth:
                server.stop()
                log.append(("stopped", time.monotonic()))
        return out

    def sleep(seconds):
        log.append(("sleep", seconds))
        real_sleep(seconds)

    monkeypatch.setattr(LabelStudioAdapter, "_call", call)
    monkeypatch.setattr(lsmod, "_sleep", sleep)


def task_runs(flow_run_id) -> dict[str, int]:
    """Task name -> how many times Prefect ran it in this flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
    return {r.name.rsplit("-", 1)[0]: r.run_count for r in runs}


def assert_retried_then_failed(state, log: list, task: str, started: float) -> None:
    assert state.is_failed()
    with pytest.raises(LabelStudioError) as err:
        state.result()
    msg = str(err.value)
    assert "cannot reach Label Studio at" in msg and "start it with `make labelstudio-up`" in msg
    sleeps = [s for kind, s in log if kind == "sleep"]
    assert sleeps == [1.0]  # the adapter's one back-off ([labelstudio] retries = 1): 2 attempts
    runs = task_runs(state.state_details.flow_run_id)
    assert runs[task] == 1  # one retry layer: Prefect does not run the task again on top
    stopped = next(t for kind, t in log if kind == "stopped")
    assert time.monotonic() - stopped >= 1  # the adapter's back-off


def project_tasks(server, cfg_root) -> tuple[int, Counter]:
    state = json.loads((cfg_root / "home" / "state" / "labelstudio.json").read_text())
    with LabelStudioAdapter(server.url, server.token) as adapter:
        tasks = adapter._tasks(state["project_id"], "id,data")
    return state["project_id"], Counter(t.data["request_id"] for t in tasks)


def queued_ids(cfg: str) -> list[str]:
    from flows.loop.open import open_loop

    return open_loop(cfg).queries.queued().column("request_id").to_pylist()


def test_curate_survives_an_outage_mid_import(outage, token, monkeypatch):
    from flows.curate import curate_flow

    server, log = outage["server"], outage["log"]
    monkeypatch.setattr(lsmod, "_IMPORT_CHUNK", CHUNK)
    stop_after(monkeypatch, server, "import", 2, log)
    started = time.monotonic()
    try:
        state = curate_flow(budget=BUDGET, seed=1, config_path=outage["cfg"], return_state=True)
        assert_retried_then_failed(state, log, "send-to-labelstudio", started)
    finally:
        monkeypatch.undo()
        server.start()
    queued = queued_ids(outage["cfg"])
    assert len(queued) == BUDGET  # the selection was kept: the rerun completes it
    _, before = project_tasks(server, outage["root"])
    assert sum(before.values()) == 2 * CHUNK  # two import requests landed before the outage

    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", server.token)
    again = curate_flow(budget=0, seed=2, config_path=outage["cfg"])
    assert again["imported"] == BUDGET - 2 * CHUNK
    assert again["already_present"] == 2 * CHUNK
    _, after = project_tasks(server, outage["root"])
    assert after == Counter({rid: 1 for rid in queued})  # every selected sample exactly once


def label_log_annotations(root) -> Counter:
    """Raw label-log rows per Label Studio annotation id (no reader deduplication)."""
    table = ds.dataset(root / "home" / "labels", format="parquet", partitioning="hive").to_table()
    return Counter(table.column("ls_annotation_id").to_pylist())


def test_sync_labels_survives_an_outage(outage, token, monkeypatch):
    from flows.sync_labels import sync_labels_flow

    server, log = outage["server"], outage["log"]
    project_id, tasks = project_tasks(server, outage["root"])
    assert sum(tasks.values()) == BUDGET, "run after the curate outage test"
    with AnnotatingAdapter(server.url, server.token) as adapter:
        pending = adapter.pending_tasks(project_id)
        first = [adapter.annotate(t, "3") for t, _ in pending[:12]]
        assert sync_labels_flow(config_path=outage["cfg"])["new_labels"] == 12
        second = [adapter.annotate(t, "7") for t, _ in pending[12:]]

    log.clear()
    stop_after(monkeypatch, server, "export", 1, log)
    started = time.monotonic()
    try:
        state = sync_labels_flow(config_path=outage["cfg"], return_state=True)
        assert_retried_then_failed(state, log, "pull-annotations", started)
    finally:
        monkeypatch.undo()
        server.start()
    assert label_log_annotations(outage["root"]) == Counter({a: 1 for a in first})

    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", server.token)
    rerun = sync_labels_flow(config_path=outage["cfg"])
    assert rerun["new_labels"] == len(second) and rerun["pending"] == 0
    assert sync_labels_flow(config_path=outage["cfg"])["new_labels"] == 0
    every = Counter({a: 1 for a in first + second})
    assert label_log_annotations(outage["root"]) == every  # each annotation exactly once
