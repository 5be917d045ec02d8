"""Fault 7: logging sustained for 60 s, as fast as two writer processes can go on this machine,
while `drift-check` and `curate` run again and again against the growing log. No error, no
lost row, and memory stays bounded: the figures are printed and kept as test properties."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.home import DataHome
from storage.queries import Queries
from tests.reliability.conftest import clone_home, write_config
from tests.reliability.helpers import spawn, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 60
WRITERS = 2
ROWS_PER_APPEND = 2000
WRITER_RSS_LIMIT_MB = 600
READER_GROWTH_LIMIT_MB = 2500  # the flows' own memory, over what this process held before


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


def test_sustained_logging_while_drift_check_and_curate_run(
    tmp_path, champion_template, ls_server, monkeypatch, record_property
):
    from flows.curate import curate_flow
    from flows.drift_check import drift_check_flow

    home = DataHome(clone_home(champion_template, tmp_path / "home"))
    cfg = str(write_config(tmp_path / "loopwright.toml", home.root, ls_server.url))
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", ls_server.token)
    pool = write_pool(tmp_path / "pool.parquet")
    reader_start = rss_mb()
    outs = [tmp_path / f"writer-{k}.txt" for k in range(WRITERS)]
    procs = [spawn("load_writer", home.root, SECONDS, ROWS_PER_APPEND, pool, o) for o in outs]
    for p in procs:
        wait_ready(p)

    samples: dict[str, list[float]] = {"writers": [], "readers": []}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples["writers"].append(max(rss_mb(p.pid) for p in procs))
            samples["readers"].append(rss_mb())
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
    done.set()
    sampler.join()

    figures = [tuple(float(v) for v in o.read_text().split()) for o in outs]
    rows = int(sum(f[0] for f in figures))
    seconds = max(f[2] for f in figures)
    rate = rows / seconds
    writer_peak = max(f[3] for f in figures)
    reader_peak = max(samples["readers"])
    files = len(list(home.predictions.rglob("*.parquet")))
    report = {
        "rows": rows,
        "rows_per_second": round(rate),
        "appends": int(sum(f[1] for f in figures)),
        "parquet_files": files,
        "writer_peak_rss_mb": writer_peak,
        "reader_start_rss_mb": round(reader_start),
        "reader_peak_rss_mb": round(reader_peak),
        "drift_check_runs": len(runs["drift-check"]),
        "drift_check_max_s": round(max(runs["drift-check"]), 1),
        "curate_runs": len(runs["curate"]),
        "curate_max_s": round(max(runs["curate"]), 1),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    for key, value in report.items():
        record_property(key, value)
    print("load:", report)
    assert Queries(home).count_predictions() == rows  # every logged row is there, once
    assert runs["drift-check"] and runs["curate"]  # both ran while the writers wrote
    assert writer_peak < WRITER_RSS_LIMIT_MB
    # bounded, not growing with the log: the last third of the run no higher than 1.25x the
    # peak of the first third (plus 50 MB of slack for allocator noise)
    w = samples["writers"]
    third = max(1, len(w) // 3)
    assert max(w[-third:]) <= 1.25 * max(w[:third]) + 50
    assert reader_peak - reader_start < READER_GROWTH_LIMIT_MB
