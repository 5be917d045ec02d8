"""Drift: loopwright's drift check vs Evidently's DataDriftPreset on the same frame.

    .venv/bin/python -m bench.drift_bench --rows 1000000 --repeats 3
    .venv/bin/python -m bench.drift_bench --rows 1000000 --repeats 3 --no-evidently
    .venv/bin/python -m bench.drift_bench --log-rows 10000000 --no-evidently --rows 0

Part 1 (`--rows N`): a reference and a current window of N rows each x 64 features (+
confidence, + predicted class) in memory; loopwright's `compute_drift` runs `--repeats`
times, interleaved around one Evidently run (it takes minutes), and the verdicts are compared
column by column. Part 2 (`--log-rows N`): N rows per window written as a prediction log under
/tmp, and the streaming drift check (`drift_from_log`) run in a child process whose peak RSS
is measured (`resource.getrusage(RUSAGE_CHILDREN)`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

from bench import synth
from bench.common import emit, machine, median, peak_rss_mb, timed
from curation.drift import compute_drift


def loopwright(ref: synth.Window, cur: synth.Window):
    return compute_drift(
        ref.features, cur.features, ref.pred, cur.pred, ref.confidence, cur.confidence,
        n_classes=synth.N_CLASSES,
    )  # fmt: skip


def evidently(ref: synth.Window, cur: synth.Window) -> dict:
    """DataDriftPreset with its defaults on the full frames (no sampling)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from curation.drift_report import frames_for_report, summarize

    names = [f"f{j}" for j in range(synth.N_FEATURES)]
    classes = np.array(synth.CLASSES)
    ref_df = frames_for_report(ref.features, classes[ref.pred], ref.confidence, names)
    cur_df = frames_for_report(cur.features, classes[cur.pred], cur.confidence, names)
    definition = DataDefinition(
        numerical_columns=[*names, "confidence"], categorical_columns=["pred"]
    )
    report = Report([DataDriftPreset()], include_tests=True)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(
            current_data=Dataset.from_pandas(cur_df, data_definition=definition),
            reference_data=Dataset.from_pandas(ref_df, data_definition=definition),
        )
        return summarize(snapshot.dict())


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha())


def compare(verdict, summary: dict) -> dict:
    ours = {c.column: c for c in (*verdict.columns, verdict.prediction)}
    mismatched = [
        name for name, c in ours.items() if c.drifted != (name in summary["drifted_columns"])
    ]
    methods = [
        name for name, c in ours.items()
        if _letters(c.method.split("_")[0]) not in _letters(summary["methods"].get(name, ""))
    ]  # fmt: skip
    diffs = [abs(c.score - summary["per_column"][name]) for name, c in ours.items()]
    return {
        "columns": len(ours),
        "verdict_mismatches": mismatched,
        "method_mismatches": methods,
        "max_abs_score_diff": max(diffs),
        "dataset_drift": [verdict.dataset_drift, summary["dataset_drift"]],
        "n_drifted": [verdict.n_drifted, summary["n_drifted"]],
    }


def load_other(path: str):
    """`compute_drift` from another file (e.g. `git show HEAD:curation/drift.py`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("other_drift", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_drift"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.compute_drift


def in_memory(rows: int, repeats: int, with_evidently: bool, other: str | None = None) -> dict:
    ref, cur = synth.window(rows, 1, False), synth.window(rows, 2, True)
    ours: list[float] = []
    theirs: list[float] = []
    verdict = None
    other_fn = load_other(other) if other else None
    for _ in range(repeats):
        seconds, verdict = timed(lambda: loopwright(ref, cur))
        ours.append(seconds)
        if other_fn is not None:
            seconds, other_verdict = timed(lambda: other_fn(
                ref.features, cur.features, ref.pred, cur.pred, ref.confidence, cur.confidence,
                n_classes=synth.N_CLASSES))  # fmt: skip
            theirs.append(seconds)
    out: dict = {"rows_per_window": rows, "features": synth.N_FEATURES}
    if other_fn is not None:
        pairs = zip((*verdict.columns, verdict.prediction),
                    (*other_verdict.columns, other_verdict.prediction), strict=True)  # fmt: skip
        out["other"] = {
            "file": other,
            "seconds": theirs,
            "median_seconds": median(theirs),
            "same_verdicts": all(a.drifted == b.drifted for a, b in pairs),
            "max_abs_score_diff": max(
                abs(a.score - b.score)
                for a, b in zip(
                    (*verdict.columns, verdict.prediction),
                    (*other_verdict.columns, other_verdict.prediction),
                    strict=True,
                )
            ),  # fmt: skip
            "speedup_loopwright_vs_other": median(theirs) / median(ours),
        }
    if with_evidently:
        ev_seconds, summary = timed(lambda: evidently(ref, cur))
        for _ in range(repeats):
            seconds, verdict = timed(lambda: loopwright(ref, cur))
            ours.append(seconds)
        out.update(
            evidently_seconds=ev_seconds,
            agreement=compare(verdict, summary),
            evidently_peak_rss_mb_incl_loopwright=peak_rss_mb(),
        )
    out.update(
        loopwright_seconds=ours,
        loopwright_median_seconds=median(ours),
        drifted_columns=list(verdict.drifted_columns),
    )
    if with_evidently:
        out["speedup_vs_evidently"] = out["evidently_seconds"] / out["loopwright_median_seconds"]
    return out


def write_log(root: Path, rows: int, chunk: int = 500_000) -> None:
    """`rows` reference rows (day 0) then `rows` drifted rows (day 1) as a prediction log.

    Generating 64 columns of random draws is slower than writing them, so each window tiles
    one 500k-row sample (same distribution) under fresh request ids and timestamps.
    """
    from storage.home import DataHome
    from storage.parquet_parts import write_partitioned

    home = DataHome(root)
    for drifted, d in ((False, 0), (True, 1)):
        base = synth.prediction_table(min(chunk, rows), seed=1 + d, start=synth.day(d),
                                      drifted=drifted)  # fmt: skip
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            write_partitioned(synth.relabel(base.slice(0, n), d * rows + start, synth.day(d), start),
                              home.predictions, "ts")  # fmt: skip


CHILD = """
import json, sys, time
from pathlib import Path
from bench.common import peak_rss_mb
from curation.drift import compute_drift_streaming
from storage.home import DataHome
from storage.queries import Queries
root, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
q = Queries(DataHome(Path(root)))
v = compute_drift_streaming(
    q.window_batches(rows, model_version="v0001", newest=False),
    q.window_batches(rows, model_version="v0001", newest=True),
    classes=[str(c) for c in range(10)],
)
Path(out).write_text(json.dumps({"seconds": time.perf_counter() - t0,
                  "cpu_seconds": time.process_time(), "peak_rss_mb": peak_rss_mb(),
                  "drifted": list(v.drifted_columns), "n_reference": v.n_reference,
                  "n_current": v.n_current}))
"""


def from_log(rows: int, repeats: int, keep: bool) -> dict:
    root = Path(f"/tmp/loopwright-bench-drift-{rows}")
    if not (root / "predictions").is_dir():
        seconds, _ = timed(lambda: write_log(root, rows))
        print(f"wrote {2 * rows} rows to {root} in {seconds:.1f} s", file=sys.stderr)
    runs = []
    for _ in range(repeats):
        out = root / "child.json"
        subprocess.run([sys.executable, "-c", CHILD, str(root), str(rows), str(out)], check=True)
        runs.append(json.loads(out.read_text()))
    if not keep:
        shutil.rmtree(root)
    return {
        "rows_per_window": rows,
        "seconds": [r["seconds"] for r in runs],
        "median_seconds": median([r["seconds"] for r in runs]),
        "cpu_seconds": [r["cpu_seconds"] for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "drifted_columns": runs[-1]["drifted"],
        "n_reference": runs[-1]["n_reference"],
        "n_current": runs[-1]["n_current"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per window, in memory")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--log-rows", type=int, default=0, help="rows per window, from a Parquet log")
    ap.add_argument("--keep", action="store_true", help="keep the generated log under /tmp")
    ap.add_argument("--other", help="also time compute_drift from this file, interleaved")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    result: dict = {"machine": machine()}
    if args.rows:
        result["in_memory"] = in_memory(args.rows, args.repeats, not args.no_evidently, args.other)
    if args.log_rows:
        result["from_log"] = from_log(args.log_rows, args.repeats, args.keep)
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
