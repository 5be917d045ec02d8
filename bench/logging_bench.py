"""Logging: rows/s through loopwright's prediction log vs a bare pyarrow write of the same
rows, and the latency logging adds to a serving loop's predict path.

    .venv/bin/python -m bench.logging_bench --rows 1000000 --chunk 100000 --repeats 5

Throughput (same prebuilt contract-schema chunks for every method, interleaved per repeat):
* `raw_pyarrow`: `pq.write_table(chunk, file)`, nothing else;
* `raw_pyarrow_fsync`: the same plus an fsync per file (the durability the log promises);
* `raw_pyarrow_layout`: `pq.write_table` with the prediction log's Parquet layout
  (`PREDICTION_LAYOUT`: dictionaries only on repeating columns, no statistics on vectors),
  not a baseline: it shows what the layout alone gains, so `prediction_log_append` against
  it is the cost of validation and atomic, durable parts on the same bytes;
* `atomic_parts`: `write_partitioned(chunk)` with pyarrow's default layout: the atomic write
  alone (date partition, temp file + fsync + rename), no validation;
* `prediction_log_append`: `PredictionLog.append(chunk)` (validation, date partitions, temp
  file + fsync + rename, the log's Parquet layout: `storage.prediction_log.PREDICTION_LAYOUT`);
* `buffered_log`: `BufferedPredictionLog.log(ids, features, probs, ts)` per chunk from NumPy
  (so it also builds the table: more work than raw), then `close()`.

Serving loop: a NumPy MLP (64 -> 256 -> 10) predicts one request at a time, back to back;
blocks of requests alternate between no logging, `BufferedPredictionLog.log` per request
and, on fewer requests, the synchronous `PredictionLog.append(make_batch(...))`. Added
latency = percentile with logging - the same percentile without, per request.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from bench import synth
from bench.common import emit, machine, median
from storage.buffered_log import BufferedPredictionLog
from storage.home import DataHome
from storage.parquet_parts import write_partitioned
from storage.prediction_log import PREDICTION_LAYOUT, PredictionLog, make_batch


def throughput(rows: int, chunk: int, repeats: int, root: Path) -> dict:
    base = synth.prediction_table(min(chunk, rows), seed=7, start=synth.day(0), drifted=False)
    chunks = [
        synth.relabel(base.slice(0, min(chunk, rows - s)), s, synth.day(0), s)
        for s in range(0, rows, chunk)
    ]
    arrays = [
        (
            c["request_id"].to_pylist(),
            np.asarray(c["features"].combine_chunks().flatten()).reshape(c.num_rows, -1),
            np.asarray(c["probs"].combine_chunks().flatten()).reshape(c.num_rows, -1),
            c["ts"].combine_chunks(),
        )
        for c in chunks
    ]
    methods = ("raw_pyarrow", "raw_pyarrow_fsync", "raw_pyarrow_layout", "atomic_parts",
               "prediction_log_append", "buffered_log")  # fmt: skip
    layout = PREDICTION_LAYOUT.write_options(chunks[0].schema)
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}  # all threads of this process
    size: dict[str, int] = {}  # bytes of Parquet written (same every repeat)
    for rep in range(repeats):
        order = list(seconds) if rep % 2 == 0 else list(reversed(seconds))
        for method in order:
            out = root / f"{method}-{rep}"
            out.mkdir(parents=True)
            t0, c0 = time.perf_counter(), time.process_time()
            if method == "raw_pyarrow":
                for i, c in enumerate(chunks):
                    pq.write_table(c, out / f"part-{i}.parquet")
            elif method == "raw_pyarrow_fsync":
                for i, c in enumerate(chunks):
                    with open(out / f"part-{i}.parquet", "wb") as f:
                        pq.write_table(c, f)
                        f.flush()
                        os.fsync(f.fileno())
            elif method == "raw_pyarrow_layout":
                for i, c in enumerate(chunks):
                    pq.write_table(c, out / f"part-{i}.parquet", **layout)
            elif method == "atomic_parts":
                for c in chunks:
                    write_partitioned(c, out / "predictions", "ts")
            elif method == "prediction_log_append":
                log = PredictionLog(DataHome(out))
                for c in chunks:
                    log.append(c, synth.CLASSES)
            else:
                blog = BufferedPredictionLog(DataHome(out), synth.CLASSES, "v0001",
                                             flush_rows=chunk, flush_seconds=5.0)  # fmt: skip
                for ids, x, p, ts in arrays:
                    blog.log(ids, x, p, ts=ts)
                blog.close()
            seconds[method].append(time.perf_counter() - t0)
            cpu[method].append(time.process_time() - c0)
            size[method] = sum(f.stat().st_size for f in out.rglob("*.parquet"))
            shutil.rmtree(out)
    med = {m: median(s) for m, s in seconds.items()}
    raw = rows / med["raw_pyarrow"]
    return {
        "rows": rows,
        "rows_per_call": chunk,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cpu_median_seconds": {m: median(s) for m, s in cpu.items()},
        "parquet_bytes": size,
        "rows_per_second": {m: rows / s for m, s in med.items()},
        "ratio_vs_raw": {m: (rows / s) / raw for m, s in med.items()},
    }


class Model:
    """A stand-in model: 64 -> 256 -> 10 MLP, softmax (tens of microseconds per request)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.w1 = rng.normal(0, 0.1, (64, 256)).astype(np.float32)
        self.w2 = rng.normal(0, 0.1, (256, 10)).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.maximum(x @ self.w1, 0) @ self.w2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def serving(requests: int, block: int, sync_requests: int, root: Path) -> dict:
    model = Model()
    rng = np.random.default_rng(1)
    xs = rng.random((requests, 64), dtype=np.float32)
    lat: dict[str, list[int]] = {"none": [], "buffered": [], "sync": []}
    call: dict[str, list[int]] = {"buffered": [], "sync": []}
    blog = BufferedPredictionLog(DataHome(root / "buffered"), synth.CLASSES, "v0001")
    slog = PredictionLog(DataHome(root / "sync"))
    sync_every = max(1, requests // max(sync_requests, 1))
    clock = time.perf_counter_ns
    for b0 in range(0, requests, block):
        for mode in ("none", "buffered") if (b0 // block) % 2 == 0 else ("buffered", "none"):
            for i in range(b0, min(b0 + block, requests)):
                t0 = clock()
                probs = model.predict(xs[i : i + 1])
                t1 = clock()
                if mode == "buffered":
                    blog.log(f"{mode}-{i}", xs[i : i + 1], probs)
                t2 = clock()
                lat[mode].append(t2 - t0)
                if mode != "none":
                    call[mode].append(t2 - t1)
        for i in range(b0, min(b0 + block, requests), sync_every):
            t0 = clock()
            probs = model.predict(xs[i : i + 1])
            t1 = clock()
            batch = make_batch(request_ids=[f"sync-{i}"], features=xs[i : i + 1], probs=probs,
                               classes=synth.CLASSES, model_version="v0001")  # fmt: skip
            slog.append(batch, synth.CLASSES)
            t2 = clock()
            lat["sync"].append(t2 - t0)
            call["sync"].append(t2 - t1)
    t0 = time.perf_counter()
    blog.close()
    close_seconds = time.perf_counter() - t0

    def pct(xs: list[int], q: float) -> float:
        return float(np.percentile(np.asarray(xs) / 1e6, q))  # ms

    out: dict = {"requests_per_mode": {m: len(v) for m, v in lat.items()}}
    for m, v in lat.items():
        out[f"{m}_latency_ms"] = {"p50": pct(v, 50), "p99": pct(v, 99), "max": pct(v, 100)}
    for m in ("buffered", "sync"):
        out[f"{m}_added_ms"] = {
            "p50": pct(lat[m], 50) - pct(lat["none"], 50),
            "p99": pct(lat[m], 99) - pct(lat["none"], 99),
        }
        out[f"{m}_log_call_ms"] = {"p50": pct(call[m], 50), "p99": pct(call[m], 99)}
    out["buffered_rows_written"] = blog.rows_written
    out["buffered_close_seconds"] = close_seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=100_000, help="rows per append call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=40_000, help="serving-loop requests per mode")
    ap.add_argument("--block", type=int, default=2_000)
    ap.add_argument("--sync-requests", type=int, default=400)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loopwright-bench-log-"))
    try:
        result = {"machine": machine()}
        if args.rows:
            result["throughput"] = throughput(args.rows, args.chunk, args.repeats, root / "t")
        if args.requests:
            result["serving"] = serving(args.requests, args.block, args.sync_requests, root / "s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
