"""The demo's wall time, stage by stage, against the 5-minute goal.

    .venv/bin/python -m bench.demo_bench /tmp/demo1.json /tmp/demo3.json
    .venv/bin/python -m bench.demo_bench /tmp/demo_after.json --time-v /tmp/demo_after.time
    .venv/bin/python -m bench.demo_bench --run --home /tmp/benchdemo   # runs the demo itself

Reads the JSON that `loopwright demo --json-out FILE` writes (`stage_seconds`, `seconds`) and
prints one row per stage with its share of the total. `--time-v FILE` adds the process figures
of `/usr/bin/time -v loopwright demo ... 2> FILE` (wall time including the servers' start and
stop, CPU seconds, peak RSS). `--run` starts the demo first (it starts Label Studio and a
Prefect server: only when nobody else is using them).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import emit, machine

GOAL_SECONDS = 300


def summarize(path: Path) -> dict:
    d = json.loads(path.read_text())
    stages = d.get("stage_seconds") or {}
    total = float(d.get("seconds") or sum(stages.values()))
    return {
        "file": str(path),
        "finished": d.get("finished"),
        "scenario": d.get("scenario"),
        "batches": d.get("batches"),
        "total_seconds": total,
        "under_goal": total < GOAL_SECONDS,
        "stages": {
            k: {"seconds": v, "share": v / total if total else None} for k, v in stages.items()
        },  # fmt: skip
        "unaccounted_seconds": total - sum(stages.values()),
    }


_TIME_V = {
    "wall_seconds": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)",
    "user_seconds": r"User time \(seconds\): ([\d.]+)",
    "system_seconds": r"System time \(seconds\): ([\d.]+)",
    "cpu_percent": r"Percent of CPU this job got: (\d+)%",
    "max_rss_mb": r"Maximum resident set size \(kbytes\): (\d+)",
}


def process_figures(text: str) -> dict:
    """The figures of a `/usr/bin/time -v` report (its stderr).

    >>> process_figures("Elapsed (wall clock) time (h:mm:ss or m:ss): 6:10.08\\n"
    ...                 "Maximum resident set size (kbytes): 896364")
    {'wall_seconds': 370.08, 'max_rss_mb': 875.4}
    """
    out = {}
    for key, pattern in _TIME_V.items():
        m = re.search(pattern, text)
        if not m:
            continue
        value = m.group(1)
        if key == "wall_seconds":
            parts = [float(p) for p in value.split(":")]
            out[key] = round(sum(p * 60**i for i, p in enumerate(reversed(parts))), 2)
        elif key == "max_rss_mb":
            out[key] = round(int(value) / 1024, 1)
        else:
            out[key] = float(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--run", action="store_true", help="run the demo first (needs the servers)")
    ap.add_argument("--home", default="/tmp/benchdemo")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--time-v", type=Path, help="stderr of /usr/bin/time -v loopwright demo")
    args = ap.parse_args()
    files = list(args.files)
    if args.run:
        out = Path(tempfile.mkdtemp(prefix="loopwright-demo-")) / "demo.json"
        exe = Path(sys.executable).with_name("loopwright")
        subprocess.run([str(exe), "demo", "--home", args.home, "--json-out", str(out)], check=True)
        files.append(out)
    if not files:
        ap.error("give demo JSON files (loopwright demo --json-out FILE) or --run")
    result = {"machine": machine(), "goal_seconds": GOAL_SECONDS,
              "runs": [summarize(f) for f in files]}  # fmt: skip
    if args.time_v:
        result["process"] = process_figures(args.time_v.read_text())
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
