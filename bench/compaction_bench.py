"""Compaction: what it costs (wall and CPU seconds, peak RSS, rows/s) and what it buys the
readers (query time on the same rows, one part per append vs merged files), on a log of
`--rows` predictions appended in parts of 2,000 rows (bench/load_log.py).

    .venv/bin/python -m bench.compaction_bench --rows 10000000 --repeats 3

Two hard-link clones of the built home: one is compacted (in a child process, `[storage]`
defaults but no minimum age and no grace, so that the merged parts go at once), the other
is left as appended. Then each query runs `--repeats` times on both, interleaved (ABBA),
in this process; medians are reported with their ratio (before / after).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import emit, machine, median
from bench.load_log import build, clone
from storage.home import DataHome
from storage.queries import Queries

QUERIES = {
    "count_predictions": lambda q: q.count_predictions(),
    "recent_predictions_2000": lambda q: q.recent_predictions(2000).num_rows,
    "curation_picks_window_2000": lambda q: q.ranked_candidates(2000, "margin", 20, 1).num_rows,
    "curation_picks_all": lambda q: q.ranked_candidates(None, "margin", 1000, 1).num_rows,
    "window_batches_100k_features": lambda q: sum(
        b.num_rows for b in q.window_batches(100_000, role="champion", columns=("features",))
    ),
}


def compact_child(root: Path) -> dict:
    code = (
        "import json, time; from dataclasses import replace; from storage.home import DataHome;"
        "from storage.settings import StorageSettings; from storage.compaction import compact_log;"
        "from bench.reader_memory_bench import vm_hwm_mb;"
        "s = StorageSettings(compact_min_age_s=0, compact_grace_s=0);"
        "t0, c0 = time.perf_counter(), time.process_time();"
        f"r = compact_log(DataHome({str(root / 'home')!r}), 'predictions', s).to_dict();"
        "r.update(wall_s=round(time.perf_counter() - t0, 1), cpu_s=round(time.process_time() - c0, 1),"
        " peak_rss_mb=round(vm_hwm_mb())); print(json.dumps(r))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[1])  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["rows_per_second"] = round(out["rows_in"] / max(out["wall_s"], 1e-9))
    out["mb_per_second"] = round(out["bytes_in"] / 1e6 / max(out["wall_s"], 1e-9), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    src = Path(f"/tmp/loopwright-bench-load-{args.rows}")
    built = build(src, args.rows)
    print("log:", json.dumps(built), flush=True)
    before = clone(src, Path(f"/tmp/loopwright-bench-compaction-{args.rows}-before"))
    after = clone(src, Path(f"/tmp/loopwright-bench-compaction-{args.rows}-after"))
    compaction = compact_child(after)
    print("compaction:", json.dumps(compaction), flush=True)
    homes = {"before": DataHome(before / "home"), "after": DataHome(after / "home")}
    seconds: dict[str, dict[str, list[float]]] = {}
    answers: dict[str, dict[str, object]] = {}
    for name in args.queries.split(","):
        fn = QUERIES[name]
        seconds[name] = {"before": [], "after": []}
        for rep in range(args.repeats):
            for side in ("before", "after") if rep % 2 == 0 else ("after", "before"):
                t0 = time.perf_counter()
                answers.setdefault(name, {})[side] = fn(Queries(homes[side]))
                seconds[name][side].append(round(time.perf_counter() - t0, 2))
        print(name, json.dumps(seconds[name]), flush=True)
    med = {n: {s: median(v) for s, v in d.items()} for n, d in seconds.items()}
    emit(
        {
            "machine": machine(),
            "log": built,
            "compaction": compaction,
            "files": {
                side: len(list(h.predictions.rglob("*.parquet"))) for side, h in homes.items()
            },
            "seconds": seconds,
            "median_seconds": med,
            "speedup_before_over_after": {
                n: round(m["before"] / max(m["after"], 1e-9), 2) for n, m in med.items()
            },
            "same_answers": {n: a["before"] == a["after"] for n, a in answers.items()},
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
