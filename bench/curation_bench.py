"""Curation: uncertainty top-k + random audit + exclusion of queued/labeled ids over a
10M-row prediction log, loopwright vs one hand-written DuckDB query doing the same.

    .venv/bin/python -m bench.curation_bench --rows 10000000 --repeats 5

The log (under /tmp, reused between runs with --keep) holds `--rows` champion predictions,
plus 1% of them logged a second time later (readers must keep the first), 50k queued ids
and 30k labeled ids. Both sides pick `--budget` rows (20% audit, margin strategy) from every
champion row, deduplicated by request id, excluding queued or labeled ids:
* `loopwright`: `pick(Queries(home).ranked_candidates(None, "margin", budget, seed, 0.2), ...)`
  (the choice happens in DuckDB; `curation.sampling.pick` applies the budget rule to the two
  short lists);
* `hand_written`: one SQL statement over the same Parquet files, written for this job.
Runs alternate; the picks of both are compared (same ids, same reasons).
`--diversity kcenter` (and/or `--stratify pred`) times loopwright's spread path instead: the
same query plus a pool of `pool_factor` x budget rows with their features, then k-center
greedy in NumPy (`curation.diversity`), against the plain top-k hand-written query (what it
costs over the plain job) and `hand_written_pool`, the same job written by hand (audit draw,
the pool, its features read back by file and row); only the audit picks are compared. `--old-path` also
times the first half of the previous way once: `Queries.candidates(rows)` (every candidate
into Arrow; the NumPy `select` that followed is gone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bench import synth
from bench.common import emit, machine, median
from curation.rules import CurationRules
from curation.sampling import pick, pool_args
from storage.home import DataHome
from storage.parquet_parts import write_partitioned
from storage.queries import Queries
from storage.schemas import LABEL_SCHEMA, QUEUE_SCHEMA

SOURCE = Path("/tmp/loopwright-bench-drift-10000000/predictions/date=2026-11-01")

HAND_WRITTEN = """
WITH p AS (
  SELECT request_id, role, 1.0 - CAST(margin AS DOUBLE) AS score
  FROM read_parquet({log}, filename=true)
  QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1
),
e AS (
  SELECT request_id, score, hash(request_id || '#{seed}') AS draw FROM p
  WHERE role = 'champion'
    AND request_id NOT IN (SELECT request_id FROM read_parquet({queue}))
    AND request_id NOT IN (SELECT request_id FROM read_parquet({labels}))
),
audit AS (SELECT request_id, score FROM e ORDER BY draw, request_id LIMIT {n_audit}),
top AS (
  SELECT request_id, score FROM e WHERE request_id NOT IN (SELECT request_id FROM audit)
  ORDER BY score DESC, request_id LIMIT {n_rest}
)
SELECT request_id, 'audit' AS reason, score FROM audit
UNION ALL
SELECT request_id, 'uncertainty', score FROM top
"""


# The same job as the spread path's SQL, written by hand: the audit draw, then the `pool` most
# uncertain other rows with their features (read back by file and row, as a person would).
HAND_WRITTEN_POOL = """
WITH p AS (
  SELECT request_id, role, 1.0 - CAST(margin AS DOUBLE) AS score, filename, file_row_number
  FROM read_parquet({log}, filename=true, file_row_number=true)
  QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts, filename) = 1
),
e AS (
  SELECT request_id, score, filename, file_row_number, hash(request_id || '#{seed}') AS draw
  FROM p WHERE role = 'champion'
    AND request_id NOT IN (SELECT request_id FROM read_parquet({queue}))
    AND request_id NOT IN (SELECT request_id FROM read_parquet({labels}))
),
audit AS (SELECT request_id, score FROM e ORDER BY draw, request_id LIMIT {n_audit}),
pool AS (
  SELECT * FROM e WHERE request_id NOT IN (SELECT request_id FROM audit)
  ORDER BY score DESC, request_id LIMIT {n_pool}
)
SELECT request_id, 'audit' AS reason, score, NULL::FLOAT[] AS features FROM audit
UNION ALL
SELECT o.request_id, 'pool', o.score, r.features FROM pool o
JOIN read_parquet({log}, filename=true, file_row_number=true) r
  ON r.filename = o.filename AND r.file_row_number = o.file_row_number
"""


def build_home(root: Path, rows: int) -> DataHome:
    """Hard-link `rows` rows of the drift bench's log (or write them), then add duplicates,
    a queue and labels."""
    home = DataHome(root)
    day = home.predictions / "date=2026-11-01"
    day.parent.mkdir(parents=True, exist_ok=True)
    if rows == 10_000_000 and SOURCE.is_dir():
        subprocess.run(["cp", "-al", str(SOURCE), str(day)], check=True)
    else:
        base = synth.prediction_table(min(rows, 500_000), 1, synth.day(0), False)
        for s in range(0, rows, 500_000):
            n = min(500_000, rows - s)
            write_partitioned(synth.relabel(base.slice(0, n), s, synth.day(0), s),
                              home.predictions, "ts")  # fmt: skip
    rng = np.random.default_rng(0)
    picks = rng.choice(rows, 50_000 + 30_000 + rows // 100, replace=False)
    ids = np.array([f"r{i:010d}" for i in picks])
    dup = synth.prediction_table(len(ids) - 80_000, 9, synth.day(0), True)
    dup = dup.set_column(0, "request_id", pa.array(ids[80_000:]))  # logged again, later ts
    dup = synth.relabel(dup, 0, synth.day(0), rows + 10).set_column(
        0, "request_id", pa.array(ids[80_000:])
    )
    write_partitioned(dup, home.predictions, "ts")
    now = pa.scalar(synth.day(0), QUEUE_SCHEMA.field("ts").type)
    queue = pa.table({"request_id": ids[:50_000], "reason": ["uncertainty"] * 50_000,
                      "score": pa.nulls(50_000, pa.float32()),
                      "ls_task_id": pa.nulls(50_000, pa.int64()),
                      "ts": pa.repeat(now, 50_000)}, schema=QUEUE_SCHEMA)  # fmt: skip
    write_partitioned(queue, home.queue, "ts")
    labels = pa.table({"request_id": ids[20_000:80_000:2], "label": ["1"] * 30_000,
                       "source": ["labelstudio"] * 30_000, "annotator": ["a"] * 30_000,
                       "ts": pa.repeat(now, 30_000), "ls_task_id": pa.nulls(30_000, pa.int64()),
                       "ls_annotation_id": pa.array(range(30_000), pa.int64())},
                      schema=LABEL_SCHEMA)  # fmt: skip
    write_partitioned(labels, home.labels, "ts")
    return home


def hand_written(home: DataHome, budget: int, share: float, seed: int, pool: int = 0) -> pa.Table:
    """The plain job by hand; with `pool`, the spread path's job (audit + pool + features)."""
    n_audit = max(1, round(budget * share))

    def glob(folder: Path) -> str:
        return f"'{folder}/**/*.parquet'"

    sql = (HAND_WRITTEN_POOL if pool else HAND_WRITTEN).format(
        log=glob(home.predictions), queue=glob(home.queue), labels=glob(home.labels),
        seed=seed, n_audit=n_audit, n_rest=budget - n_audit, n_pool=pool,
    )  # fmt: skip
    con = duckdb.connect()
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--old-path", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--diversity", default="none", choices=["none", "kcenter"])
    ap.add_argument("--stratify", default="")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    root = Path(f"/tmp/loopwright-bench-curation-{args.rows}")
    if not (root / "predictions").is_dir():
        t0 = time.perf_counter()
        build_home(root, args.rows)
        print(f"built {root} in {time.perf_counter() - t0:.0f} s", flush=True)
    home = DataHome(root)
    q = Queries(home)
    rules = CurationRules(
        strategy="margin", audit_share=0.2, diversity=args.diversity, stratify=args.stratify
    )
    sides = ["loopwright", "hand_written"] + (["hand_written_pool"] if rules.spread else [])
    seconds: dict[str, list[float]] = {s: [] for s in sides}
    cpu: dict[str, list[float]] = {s: [] for s in sides}
    results = {}
    pool = pool_args(rules, args.budget).get("pool", 0)
    for rep in range(args.repeats):
        order = sides[:: 1 if rep % 2 == 0 else -1]
        for side in order:
            t0, c0 = time.perf_counter(), time.process_time()
            if side == "loopwright":
                ranked = q.ranked_candidates(
                    None, "margin", args.budget, rep, 0.2, **pool_args(rules, args.budget)
                )
                out = pick(ranked, args.budget, rules)
            elif side == "hand_written_pool":  # the same job by hand, picks spread alike
                out = hand_written(home, args.budget, 0.2, rep, pool=pool)
            else:
                out = hand_written(home, args.budget, 0.2, rep)
            seconds[side].append(time.perf_counter() - t0)
            cpu[side].append(time.process_time() - c0)
            results[side] = out
    lw, hw = results["loopwright"], results["hand_written"]
    same = lw["request_id"].to_pylist() == hw["request_id"].to_pylist() and (
        lw["reason"].to_pylist() == hw["reason"].to_pylist()
    )
    if rules.spread:  # spread picks differ from top-k by design: check the audit share only
        n_audit = rules.audit_count(args.budget)
        same = lw["request_id"].to_pylist()[:n_audit] == hw["request_id"].to_pylist()[:n_audit]
    med = {s: median(v) for s, v in seconds.items()}
    result = {
        "machine": machine(),
        "rows": args.rows,
        "budget": args.budget,
        "diversity": args.diversity,
        "stratify": args.stratify,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "median_seconds": med,
        "median_cpu_seconds": {s: median(v) for s, v in cpu.items()},
        "ratio_loopwright_over_hand_written": med["loopwright"] / med["hand_written"],
        **(
            {
                "ratio_loopwright_over_hand_written_pool": med["loopwright"]
                / med["hand_written_pool"]
            }
            if "hand_written_pool" in med
            else {}
        ),
        "same_picks": same,
        "picked": {
            "audit": lw["reason"].to_pylist().count("audit"),
            "uncertainty": lw["reason"].to_pylist().count("uncertainty"),
        },  # fmt: skip
    }
    if args.old_path:
        t0 = time.perf_counter()
        cands = q.candidates(args.rows + args.rows // 100)
        result["old_path_seconds"] = time.perf_counter() - t0
        result["old_path_candidates"] = cands.num_rows
    if not args.keep:
        shutil.rmtree(root)
    emit(result, args.json_out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
