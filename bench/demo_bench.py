"""The demo's wall time, stage by stage, against the 5-minute goal.

    .venv/bin/python -m bench.demo_bench /tmp/demo1.json /tmp/demo3.json
    .venv/bin/python -m bench.demo_bench --run --home /tmp/benchdemo   # runs the demo itself

Reads the JSON that `loopwright demo --json-out FILE` writes (`stage_seconds`, `seconds`) and
prints one row per stage with its share of the total. `--run` starts the demo first (it
starts Label Studio and a Prefect server: only when nobody else is using them).
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--run", action="store_true", help="run the demo first (needs the servers)")
    ap.add_argument("--home", default="/tmp/benchdemo")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    files = list(args.files)
    if args.run:
        out = Path(tempfile.mkdtemp(prefix="loopwright-demo-")) / "demo.json"
        exe = Path(sys.executable).with_name("loopwright")
        subprocess.run([str(exe), "demo", "--home", args.home, "--json-out", str(out)], check=True)
        files.append(out)
    if not files:
        ap.error("give demo JSON files (loopwright demo --json-out FILE) or --run")
    emit({"machine": machine(), "goal_seconds": GOAL_SECONDS,
          "runs": [summarize(f) for f in files]}, args.json_out)  # fmt: skip


if __name__ == "__main__":
    main()
