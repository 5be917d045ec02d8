"""The logs on object storage against the local disk, same run: prediction logging and a
curation query.

    .venv/bin/python -m bench.object_store_bench --appends 200 --rows 256 --query-rows 100000

Starts the S3 stand-in (scripts/s3.sh: moto_server on 127.0.0.1, in memory) and, for each
side (`disk`: the data home's folder; `s3`: `[storage] logs_url` on that server), times
- `append`: `--appends` calls of `PredictionLog.append` of `--rows` rows each (64 features,
  10 classes: a serving batch), one part each, median per call;
- `query`: `Queries.ranked_candidates` (the curation query: DuckDB over every part) on a log
  of `--query-rows` rows in `--query-parts` parts, median of `--repeats` after a cold first
  call (reported apart: on s3 it downloads every part to the readers' local copies).
The ratio is s3 / disk of the medians. moto keeps objects in memory on this machine, so
this measures the protocol's cost (HTTP requests, listing, s3fs reads), not a network's: a
real bucket adds its round trips (tens of ms per request on AWS), which `--appends` calls
each pay once. Everything started is stopped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from bench.common import emit, machine, median

REPO = Path(__file__).resolve().parents[1]
CLASSES = [str(i) for i in range(10)]


def _batch(rng: np.random.Generator, prefix: str, n: int, n_features: int = 64):
    from storage.prediction_log import make_batch

    logits = rng.normal(size=(n, len(CLASSES))) * 3
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return make_batch(
        request_ids=[f"{prefix}-{i:07d}" for i in range(n)],
        features=rng.random((n, n_features)) * 16,
        probs=probs,
        classes=CLASSES,
        model_version="v0001",
    )


def _side(home, args) -> dict:
    from storage.prediction_log import PredictionLog
    from storage.queries import Queries

    rng = np.random.default_rng(7)
    log = PredictionLog(home)
    batches = [_batch(rng, f"a{i:04d}", args.rows) for i in range(args.appends)]
    per_call = []
    for t in batches:
        t0 = time.perf_counter()
        log.append(t, classes=CLASSES)
        per_call.append(time.perf_counter() - t0)
    per_part = args.query_rows // args.query_parts
    for i in range(args.query_parts):
        log.append(_batch(rng, f"q{i:04d}", per_part), classes=CLASSES)
    q = Queries(home)
    t0 = time.perf_counter()  # cold: imports, first listing, and on s3 every part's download
    q.ranked_candidates(None, "margin", budget=20, seed=1)
    cold = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = q.ranked_candidates(None, "margin", budget=20, seed=1)
        times.append(time.perf_counter() - t0)
    return {
        "append_median_ms": round(1000 * median(per_call), 2),
        "append_rows_per_s": round(args.rows / median(per_call)),
        "query_cold_s": round(cold, 3),
        "query_median_s": round(median(times), 3),
        "query_rows": q.count_predictions(),
        "picked": out.num_rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--query-rows", type=int, default=100_000)
    ap.add_argument("--query-parts", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--port", type=int, default=55910)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from storage.home import DataHome

    work = Path(tempfile.mkdtemp(prefix="lw-objbench-"))
    env = {
        **os.environ,
        "S3_PORT": str(args.port),
        "S3_DIR": str(work / "s3"),
        "PY": sys.executable,
    }
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        os.environ.setdefault(key, value)
    script = str(REPO / "scripts" / "s3.sh")
    subprocess.run([script, "start"], env=env, check=True, capture_output=True, timeout=120)
    try:
        endpoint = f"http://127.0.0.1:{args.port}"
        disk = DataHome(work / "disk").ensure()
        s3 = DataHome(work / "s3home", f"s3://loopwright/b-{uuid.uuid4().hex[:6]}", endpoint)
        result = {"disk": _side(disk, args), "s3": _side(s3.ensure(), args)}
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=60)
    d, s = result["disk"], result["s3"]
    result["ratio_append_s3_over_disk"] = round(s["append_median_ms"] / d["append_median_ms"], 2)
    result["ratio_query_s3_over_disk"] = round(s["query_median_s"] / d["query_median_s"], 2)
    result["args"] = vars(args)
    result["machine"] = machine()
    emit(result, args.json)


if __name__ == "__main__":
    main()
