"""Fault 7: a fixed load (2 writer processes, `APPENDS` appends of 2,000 digit predictions
each: 4 M rows, 2,000 parts) while `drift-check` and `curate` run again and again against
the growing log, and compaction merges it in another process, as the scheduled `compact`
deployment would (an hour of a busy endpoint's appends, in a minute). No error, no lost
row, and memory bounded: the writers' flat, the readers' not growing with the log and
within what `[storage] memory_limit_mb` allows.

The work is fixed, not the time: a faster machine finishes sooner with the same log, so the
same bounds hold on any machine. The rate is reported (a test property), never asserted.
Without compaction a reader's DuckDB also holds per-file state (~90 kB a part: footers,
schemas for `union_by_name`), which grows with the number of parts, not rows: figures in
bench/RESULTS.md, "Reader memory and compaction".
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.home import DataHome
from storage.log_views import log_files
from storage.queries import Queries
from tests.reliability.conftest import clone_home, write_config
from tests.reliability.helpers import spawn, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRITERS = 2
APPENDS = 1000  # per writer
ROWS_PER_APPEND = 2000
MEMORY_LIMIT_MB = 512  # [storage] memory_limit_mb of the readers' DuckDB connections
WRITER_RSS_LIMIT_MB = 600
# The flows' own memory over what this process held before: one DuckDB query at a time
# (its memory limit) plus Arrow results, the champion and Evidently's frames on samples.
READER_GROWTH_LIMIT_MB = MEMORY_LIMIT_MB + 700


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def write_pool(path: Path) -> Path:
    """Digit images (PNG) and their features, for the writers to cycle through."""
    from retrain.digits.data import split_digits
    from retrain.digits.task import TASK

    images = split_digits(seed_rows=300, holdout_rows=200, seed=0).pool_x[:500]
    x = images.reshape(-1, 1, 8, 8).astype(np.float32)
    feats = TASK.features(x)
    pq.write_table(
        pa.table(
            {
                "features": pa.array(list(feats), pa.list_(pa.float32())),
                "input": pa.array([TASK.encode_input(i) for i in images], pa.binary()),
            }
        ),
        path,
    )
    return path


def rows_logged(home: DataHome) -> int:
    """Rows in the live parts, from their footers (a few kB read: no reader memory)."""
    rows = 0
    for path in log_files(home.predictions):
        with contextlib.suppress(OSError):  # merged and deleted meanwhile
            rows += pq.read_metadata(path).num_rows
    return rows


def thirds(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """Peak RSS over the middle and the last third of the log's growth (by rows logged),
    so that the comparison is about log size, not about how fast this machine wrote."""
    top = max(rows for rows, _ in samples) or 1
    middle = [mb for rows, mb in samples if top / 3 <= rows < 2 * top / 3]
    last = [mb for rows, mb in samples if rows >= 2 * top / 3]
    return max(middle, default=0.0), max(last, default=0.0)


def test_fixed_load_while_drift_check_and_curate_run(
    tmp_path, champion_template, ls_server, monkeypatch, record_property
):
    from flows.curate import curate_flow
    from flows.drift_check import drift_check_flow

    home = DataHome(clone_home(champion_template, tmp_path / "home"))
    extra = f"[storage]\nmemory_limit_mb = {MEMORY_LIMIT_MB}\n"
    cfg = str(write_config(tmp_path / "loopwright.toml", home.root, ls_server.url, extra))
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", ls_server.token)
    pool = write_pool(tmp_path / "pool.parquet")
    reader_start = rss_mb()
    outs = [tmp_path / f"writer-{k}.txt" for k in range(WRITERS)]
    procs = [
        spawn("load_appends", home.root, APPENDS, ROWS_PER_APPEND, pool, o, f"w{k}")
        for k, o in enumerate(outs)
    ]
    stop = tmp_path / "stop-compacting"
    # 32 MB files, parts merged 300 s after (longer than any reader query here), 2 s apart
    compactor = spawn("compact", home.root, 32, 300, 1, stop, 2)
    for p in (*procs, compactor):
        wait_ready(p)

    # (rows logged so far, RSS)
    samples: dict[str, list[tuple[int, float]]] = {"writers": [], "readers": []}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            logged = rows_logged(home)
            samples["writers"].append((logged, max(rss_mb(p.pid) for p in procs)))
            samples["readers"].append((logged, rss_mb()))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    runs = {"drift-check": [], "curate": []}
    t0 = time.monotonic()
    while any(p.poll() is None for p in procs):
        start = time.monotonic()
        drift = drift_check_flow(config_path=cfg)
        runs["drift-check"].append(time.monotonic() - start)
        assert drift["status"] in {"ok", "drift", "waiting"}
        start = time.monotonic()
        curated = curate_flow(budget=20, seed=len(runs["curate"]), config_path=cfg)
        runs["curate"].append(time.monotonic() - start)
        assert curated["imported"] == curated["selected"]
    for p in procs:
        p.wait(timeout=120)
        assert p.returncode == 0
    # one more of each on the whole log: the biggest it gets
    drift_check_flow(config_path=cfg)
    curate_flow(budget=20, seed=len(runs["curate"]), config_path=cfg)
    done.set()
    sampler.join()
    stop.touch()
    compacted = [line.split() for line in compactor.communicate(timeout=300)[0].splitlines()]
    assert compactor.returncode == 0

    figures = [tuple(float(v) for v in o.read_text().split()) for o in outs]
    rows = int(sum(f[0] for f in figures))
    seconds = max(f[2] for f in figures)
    writer_peak = max(f[3] for f in figures)
    reader_peak = max(mb for _, mb in samples["readers"])
    reader_mid, reader_last = thirds(samples["readers"])
    files = len(log_files(home.predictions))
    report = {
        "rows": rows,
        "rows_per_second": round(rows / seconds),
        "appends": int(sum(f[1] for f in figures)),
        "live_files_at_end": files,
        "compaction_rounds": sum(1 for c in compacted if c[0] == "ROUND"),
        "merged_files_written": sum(int(c[2]) for c in compacted if c[0] == "ROUND"),
        "writer_peak_rss_mb": writer_peak,
        "reader_start_rss_mb": round(reader_start),
        "reader_peak_rss_mb": round(reader_peak),
        "reader_middle_third_peak_mb": round(reader_mid),
        "reader_last_third_peak_mb": round(reader_last),
        "drift_check_runs": len(runs["drift-check"]),
        "drift_check_max_s": round(max(runs["drift-check"]), 1),
        "curate_runs": len(runs["curate"]),
        "curate_max_s": round(max(runs["curate"]), 1),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    for key, value in report.items():
        record_property(key, value)
    print("load:", report)
    assert rows == WRITERS * APPENDS * ROWS_PER_APPEND  # the work is fixed
    assert Queries(home).count_predictions() == rows  # every logged row is there, once
    assert runs["drift-check"] and runs["curate"]  # both ran while the writers wrote
    assert writer_peak < WRITER_RSS_LIMIT_MB
    # flat writers: the last third of the log no higher than 1.25x the first third's peak
    w = [mb for _, mb in samples["writers"]]
    third = max(1, len(w) // 3)
    assert max(w[-third:]) <= 1.25 * max(w[:third]) + 50
    # readers do not grow with the log: the last third of it (the biggest log) costs no more
    # than the middle third, within allocator noise, and stays within the memory setting
    assert reader_last <= reader_mid + 150
    assert reader_peak - reader_start < READER_GROWTH_LIMIT_MB
