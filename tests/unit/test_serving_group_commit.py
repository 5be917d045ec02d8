"""storage.group_commit: concurrent callers share writes; a failed write fails its own group's
waiters only; nothing pending is lost at close."""

from __future__ import annotations

import threading
import time

import pytest

from storage.group_commit import GroupCommit, GroupCommitClosed


def test_concurrent_submits_are_written_once_in_few_groups():
    groups: list[list[int]] = []
    slow = threading.Event()

    def write(items):
        slow.wait(0.02)  # a disk taking 20 ms: callers gather meanwhile
        groups.append(list(items))

    with GroupCommit(write, max_rows=1000, max_ms=5.0) as gc:
        futures = []
        lock = threading.Lock()

        def client(k):
            for j in range(25):
                f = gc.submit(k * 100 + j)
                with lock:
                    futures.append(f)
                f.result(timeout=10)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    written = sorted(x for g in groups for x in g)
    assert written == sorted(k * 100 + j for k in range(8) for j in range(25))
    assert len(groups) < 200 / 2  # 8 concurrent callers: groups of several items
    assert max(len(g) for g in groups) > 1
    assert gc.rows_written == 200 and gc.failed_groups == 0


def test_max_rows_writes_without_waiting_for_the_timer():
    groups = []
    with GroupCommit(groups.append, max_rows=3, max_ms=60_000) as gc:
        started = time.monotonic()
        fs = [gc.submit(i) for i in range(3)]
        for f in fs:
            f.result(timeout=5)
        assert time.monotonic() - started < 5  # the 60 s timer was not what wrote it
    assert groups == [[0, 1, 2]]


def test_max_ms_writes_a_lone_row_after_the_timer():
    groups = []
    with GroupCommit(groups.append, max_rows=1000, max_ms=30) as gc:
        started = time.monotonic()
        gc.submit("lone").result(timeout=5)
        waited = time.monotonic() - started
    assert groups == [["lone"]]
    assert 0.025 <= waited < 2.0


def test_a_failed_write_fails_every_waiter_of_its_group_and_no_other():
    calls = []

    def write(items):
        calls.append(list(items))
        if "bad" in items:
            raise OSError("disk full")

    gate = threading.Event()
    with GroupCommit(lambda items: (gate.wait(5), write(items)), max_rows=3, max_ms=1000) as gc:
        doomed = [gc.submit(x) for x in ("a", "bad", "c")]  # one group of 3
        gate.set()
        for f in doomed:
            with pytest.raises(OSError, match="disk full"):
                f.result(timeout=5)
        later = [gc.submit(x) for x in ("d", "e", "f")]
        assert [f.result(timeout=5) for f in later] == [None, None, None]
    assert calls == [["a", "bad", "c"], ["d", "e", "f"]]
    assert gc.failed_groups == 1 and gc.rows_written == 3


def test_close_writes_what_is_pending_and_refuses_more():
    groups = []
    gc = GroupCommit(groups.append, max_rows=100, max_ms=60_000)
    f = gc.submit("x", rows=2)
    gc.close()
    assert f.result(timeout=1) is None and groups == [["x"]]
    with pytest.raises(GroupCommitClosed):
        gc.submit("y")


def test_back_pressure_bounds_pending_rows():
    release = threading.Event()
    seen = []

    def write(items):
        seen.append(len(items))
        release.wait(5)

    gc = GroupCommit(write, max_rows=2, max_ms=0, max_pending_rows=4)
    gc.submit("first")  # taken by the writer at once, which then blocks
    time.sleep(0.05)
    for i in range(4):
        gc.submit(i)
    blocked = threading.Thread(target=gc.submit, args=("over",))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive() and gc.pending_rows == 4  # waits for room, does not grow
    release.set()
    blocked.join(5)
    gc.close()
    assert not blocked.is_alive() and sum(seen) == 6


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_rows": 0}, "max_rows = 0"),
        ({"max_ms": -1}, "max_ms = -1"),
        ({"max_rows": 10, "max_pending_rows": 5}, "max_pending_rows = 5 < max_rows = 10"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        GroupCommit(list.append, **kwargs)
