"""Faults 1 and 2: a writer killed mid-append loses nothing it acknowledged and leaves nothing
a reader can trip on; four writers at once with overlapping request ids lose no row and no
reader counts an id twice."""

from __future__ import annotations

import os
import random
import signal
import time

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from storage.home import DataHome
from storage.parquet_parts import TMP_SUFFIX
from storage.queries import Queries
from storage.schemas import PREDICTION_SCHEMA
from tests.reliability.helpers import overlapping_writers, spawn, wait_ready

pytestmark = pytest.mark.slow

TRIALS = 20
SEED = 20261121


def visible_parts(home: DataHome) -> list:
    return sorted(home.predictions.rglob("*.parquet"))


def temp_parts(home: DataHome) -> list:
    return sorted(home.predictions.rglob(f"*{TMP_SUFFIX}"))


def assert_readable(q: Queries, batches: dict[str, int], when: str) -> None:
    wanted = [f"{p}-{j:05d}" for p, n in batches.items() for j in range(n)]
    found = q.prediction_frame(wanted, columns=["request_id"]).column("request_id")
    assert found.to_pylist() == wanted, f"{when}: acknowledged rows missing"


def test_sigkill_while_logging_loses_no_acknowledged_batch(tmp_path, record_property):
    """≥ 20 seeded SIGKILLs (10 rounds of two writers appending at once, each killed at its
    own random moment): every acknowledged batch is readable, no partial file is visible to
    DuckDB, and the next open removes the dead writers' temp files."""
    rng = random.Random(SEED)
    home = DataHome(tmp_path / "home").ensure()
    acked: dict[str, int] = {}  # batch prefix -> rows
    caught_mid_write = kills = 0
    for round_ in range(TRIALS // 2):
        procs = [spawn("log", home.root, f"t{round_:02d}{w}", SEED + 2 * round_ + k)
                 for k, w in enumerate("ab")]  # fmt: skip
        for p in procs:
            wait_ready(p)
        start = time.monotonic()
        moments = sorted((rng.uniform(0.05, 0.8), k) for k in range(len(procs)))
        for at, k in moments:
            time.sleep(max(0.0, start + at - time.monotonic()))
            procs[k].send_signal(signal.SIGKILL)
        now: dict[str, int] = {}
        for p in procs:
            out = p.stdout.read()
            p.wait()
            p.stdout.close()
            assert p.returncode == -signal.SIGKILL
            kills += 1
            for line in out.splitlines():
                _, prefix, n = line.split()
                now[prefix] = int(n)
        acked.update(now)
        caught_mid_write += len(temp_parts(home))

        # No partial file: every visible part is a whole Parquet file in the log's schema...
        for part in visible_parts(home):
            assert pq.read_schema(part).equals(PREDICTION_SCHEMA), part
            assert pq.read_metadata(part).num_rows > 0
        # ...and DuckDB, which globs the whole log, reads every row acknowledged this round
        # (and, at the end, every row of every round).
        q = Queries(home)
        assert_readable(q, now, f"round {round_}")
        raw = ds.dataset(home.predictions, format="parquet", partitioning="hive").count_rows()
        assert q.count_predictions() == raw  # every visible row is one distinct request id

        # The next open cleans what the dead writers left (their pids are gone).
        home.ensure()
        assert temp_parts(home) == []
    assert_readable(Queries(home), acked, "after all rounds")
    rows = sum(acked.values())
    record_property("trials", kills)
    record_property("acknowledged_rows_checked", rows)
    record_property("kills_leaving_a_temp_part", caught_mid_write)
    print(
        f"{kills} kills, {len(acked)} acknowledged batches, {rows} rows checked, "
        f"{caught_mid_write} temp parts left by killed writers"
    )
    assert kills >= 20
    assert len(acked) >= kills  # the kills came after real work, not only at start-up


def test_four_concurrent_writers_with_overlapping_ids(tmp_path, record_property):
    """4 processes log at once; each id range overlaps its neighbour's by half. No row is
    lost and no reader query sees an id twice."""
    home = DataHome(tmp_path / "home").ensure()
    span = 6000
    expected = overlapping_writers(home.root, tmp_path / "go", span, rows=500)
    raw_rows = ds.dataset(home.predictions, format="parquet", partitioning="hive").count_rows()
    assert raw_rows == 4 * span  # every append landed; overlaps were stored twice

    q = Queries(home)
    n = len(expected)
    assert q.count_predictions() == n
    assert sum(q.count_predictions(model_version=f"v000{k}") for k in range(1, 5)) == n
    for table in (
        q.recent_predictions(10 * n, columns=["request_id"]),
        q.first_predictions(10 * n, columns=["request_id"]),
        q.candidates(10 * n),
        q.prediction_frame(sorted(expected), columns=["request_id"]),
    ):
        ids = table.column("request_id").to_pylist()
        assert len(ids) == len(set(ids)) == n
        assert set(ids) == expected
    record_property("concurrent_rows_checked", raw_rows)
    assert os.listdir(home.predictions)  # partitions exist
