"""Reader memory: each flow's peak RSS (and time) on a log of `--rows` predictions in parts of
2,000 rows, as serving appends write them, then the same after compaction.

    .venv/bin/python -m bench.reader_memory_bench --rows 1000000
    .venv/bin/python -m bench.reader_memory_bench --rows 10000000 --json /tmp/rm-10m.json

Each measurement runs in its own child process (`--child WHAT`), which reports its peak RSS
(`VmHWM`, DuckDB's memory included) and wall and CPU seconds:
* `drift`: the `drift-check` flow's work (`flows.drift_check.check`, without Prefect):
  reference from the champion's training rows, the window streamed and sampled, re-scored;
* `curate`: the `curate` flow's work without Label Studio: the picks over the latest
  `[curation] window_rows` (`select-samples`, which queues them), then the queue as
  `send-to-labelstudio` reads it;
* `curate_all`: `Queries.ranked_candidates(None, "margin", 1000, ...)`, every row of the log a candidate,
  and `hand_written`, one DuckDB statement doing the same (bench/curation_bench.py), with
  DuckDB's defaults (no memory limit: 80 % of RAM);
* `count`, `recent`: `count_predictions()` and `recent_predictions(2000)`.
The home comes from bench/load_log.py (built once, cloned with hard links); `[storage]` is
the default unless `--memory-limit-mb` is given. `--repeats N` runs each measure N times,
in alternating order (ABBA), for the time ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import emit, machine
from bench.load_log import build, clone

MEASURES = ("drift", "curate", "curate_all", "hand_written", "count", "recent")


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(what: str, root: Path, memory_limit_mb: int | None) -> dict:
    """One measurement in this (fresh) process."""
    if memory_limit_mb:
        os.environ["LOOPWRIGHT_STORAGE__MEMORY_LIMIT_MB"] = str(memory_limit_mb)
    from flows.loop.open import open_loop as open_runtime

    rt = open_runtime(str(root / "loopwright.toml"))
    base = vm_hwm_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if what == "drift":
        from flows.loop.drift import check

        verdict = check(rt)
        out = {"status": verdict["status"], "rows": (verdict.get("current") or {}).get("rows")}
    elif what == "curate":
        from flows.loop.curate import select_samples

        picked = select_samples(rt, 20, 1)
        out = {"selected": picked["selected"], "queued": rt.queries.queued(True).num_rows}
    elif what == "curate_all":
        out = {"picked": rt.queries.ranked_candidates(None, "margin", 1000, 1).num_rows}
    elif what == "hand_written":
        from bench.curation_bench import hand_written

        out = {"picked": hand_written(rt.home, 1000, 0.2, 1).num_rows}
    elif what == "count":
        out = {"count": rt.queries.count_predictions()}
    elif what == "recent":
        out = {"rows": rt.queries.recent_predictions(2000).num_rows}
    else:
        raise SystemExit(f"unknown measure {what!r}: use one of {MEASURES}")
    return {
        "what": what,
        **out,
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(time.process_time() - c0, 2),
        "peak_rss_mb": round(vm_hwm_mb()),
        "rss_before_mb": round(base),
    }


def measure(what: str, root: Path, memory_limit_mb: int | None) -> dict:
    cmd = [sys.executable, "-m", "bench.reader_memory_bench", "--child", what, "--home", str(root)]
    if memory_limit_mb:
        cmd += ["--memory-limit-mb", str(memory_limit_mb)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    if proc.returncode != 0:
        return {"what": what, "error": proc.stderr.strip().splitlines()[-1:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def compact(root: Path) -> dict:
    """Compaction of every log of the clone, in a child process (time, peak RSS)."""
    code = (
        "import json, time; from flows.loop.open import open_loop as open_runtime;"
        "from storage.compaction import compact_log;"
        f"rt = open_runtime({str(root / 'loopwright.toml')!r});"
        "from dataclasses import replace;"
        "s = replace(rt.cfg.storage, compact_min_age_s=0, compact_grace_s=0);"
        "logs = {l: compact_log(rt.home, l, s).to_dict() for l in ('predictions', 'labels',"
        " 'queue')}; from bench.reader_memory_bench import vm_hwm_mb;"
        "print(json.dumps({'peak_rss_mb': round(vm_hwm_mb()), 'logs': logs}))"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[1])  # fmt: skip
    return {"wall_s": round(time.perf_counter() - t0, 1),
            **json.loads(proc.stdout.strip().splitlines()[-1])}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--measures", default=",".join(MEASURES))
    ap.add_argument("--memory-limit-mb", type=int)
    ap.add_argument("--repeats", type=int, default=1, help="children per measure, alternating")
    ap.add_argument("--child")
    ap.add_argument("--home", type=Path)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.home, args.memory_limit_mb)))
        return
    src = Path(f"/tmp/loopwright-bench-load-{args.rows}")
    built = build(src, args.rows)
    print("log:", json.dumps(built), flush=True)
    work = clone(src, Path(f"/tmp/loopwright-bench-readers-{args.rows}"))
    measures = args.measures.split(",")

    def rounds() -> list[dict]:
        out = []
        for rep in range(args.repeats):  # ABBA: each measure sees a similar machine
            for m in measures if rep % 2 == 0 else measures[::-1]:
                out.append(measure(m, work, args.memory_limit_mb))
        return out

    before = rounds()
    compaction = compact(work)
    print("compaction:", json.dumps(compaction), flush=True)
    after = rounds()
    emit(
        {
            "machine": machine(),
            "log": built,
            "memory_limit_mb": args.memory_limit_mb or "default [storage]",
            "before_compaction": before,
            "compaction": compaction,
            "after_compaction": after,
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
