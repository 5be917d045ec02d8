"""`drift-check`: compare recent traffic with the champion's reference window.

The machine's verdict comes from NumPy statistics over every row (fast at millions of
rows); people get an Evidently HTML report computed on a sample. Both are written under
`<home>/reports/drift/`, and the verdict is kept as state for triggers and `status`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from curation.drift import compute_drift
from curation.drift_report import frames_for_report, write_report
from flows.runtime import Runtime, open_runtime
from storage.state import write_state

COLUMNS = ["request_id", "ts", "features", "pred", "confidence"]


def feature_matrix(table: pa.Table) -> np.ndarray:
    col = table.column("features").combine_chunks()
    n = table.num_rows
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(n, -1) if n else np.zeros((0, 0), dtype=np.float32)


def class_indices(table: pa.Table, classes: tuple[str, ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[p] for p in table.column("pred").to_pylist()], dtype=np.int64)


def check(rt: Runtime) -> dict:
    cfg = rt.cfg.drift
    champion = rt.registry.get("champion")
    n = rt.queries.count_predictions(model_version=champion) if champion else 0
    needed = cfg.reference_rows + cfg.window_rows
    now = datetime.now(UTC)
    run_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    if champion is None or n < needed:
        verdict = {
            "status": "waiting",
            "dataset_drift": False,
            "reason": f"champion {champion} has {n} logged rows, {needed} needed "
            f"({cfg.reference_rows} reference + {cfg.window_rows} current)",
            "champion": champion,
            "ts": now.isoformat(),
        }
        write_state(rt.home, "last_drift", verdict)
        return verdict
    ref = rt.queries.first_predictions(cfg.reference_rows, model_version=champion, columns=COLUMNS)
    cur = rt.queries.recent_predictions(cfg.window_rows, model_version=champion, columns=COLUMNS)
    classes = rt.task.classes
    ref_x, cur_x = feature_matrix(ref), feature_matrix(cur)
    ref_p, cur_p = class_indices(ref, classes), class_indices(cur, classes)
    ref_c = ref.column("confidence").to_numpy()
    cur_c = cur.column("confidence").to_numpy()
    result = compute_drift(
        ref_x,
        cur_x,
        ref_p,
        cur_p,
        ref_c,
        cur_c,
        n_classes=len(classes),
        numeric_threshold=cfg.numeric_threshold,
        categorical_threshold=cfg.categorical_threshold,
        drift_share=cfg.drift_share,
    )
    out = rt.home.drift_reports
    names = [f"f{i}" for i in range(ref_x.shape[1])]
    report = write_report(
        frames_for_report(ref_x, [classes[i] for i in ref_p], ref_c, names),
        frames_for_report(cur_x, [classes[i] for i in cur_p], cur_c, names),
        out / f"{run_id}.html",
        out / f"{run_id}.evidently.json",
        sample_rows=cfg.report_sample_rows,
    )
    verdict = {
        "status": "drift" if result.dataset_drift else "ok",
        **result.to_dict(),
        "champion": champion,
        "reference": {"rows": ref.num_rows, "from": str(ref.column("ts")[0].as_py())},
        "current": {"rows": cur.num_rows, "to": str(cur.column("ts")[-1].as_py())},
        "evidently": report,
        "report_html": str(out / f"{run_id}.html"),
        "ts": now.isoformat(),
    }
    (out / f"{run_id}.json").write_text(json.dumps(verdict, indent=2, default=str))
    write_state(rt.home, "last_drift", verdict)
    return verdict


@task(name="drift-statistics", cache_policy=NO_CACHE)
def run_check(rt: Runtime) -> dict:
    return check(rt)


def markdown(verdict: dict) -> str:
    if verdict["status"] == "waiting":
        return f"# Drift check: waiting\n\n{verdict['reason']}\n"
    lines = [
        f"# Drift check: {'DRIFT' if verdict['dataset_drift'] else 'no drift'}",
        "",
        f"Champion `{verdict['champion']}`; {verdict['n_drifted']} of {verdict['n_columns']} "
        f"feature columns drifted (share {verdict['drift_share']:.2f}).",
        f"Predicted-class drift score {verdict['prediction']['score']:.3f} "
        f"(threshold {verdict['prediction']['threshold']}); mean confidence "
        f"{verdict['confidence_ref']:.3f} → {verdict['confidence_cur']:.3f}.",
        f"Evidently report (sample): `{verdict['report_html']}`",
    ]
    return "\n".join(lines) + "\n"


@flow(name="drift-check", log_prints=True)
def drift_check_flow(config_path: str | None = None, home: str | None = None) -> dict:
    """Compare the latest traffic with the champion's reference window."""
    rt = open_runtime(config_path, home)
    verdict = run_check(rt)
    create_markdown_artifact(
        markdown(verdict), key="drift-check", description="Latest drift verdict"
    )
    print(markdown(verdict).replace("\n\n", "\n").strip())
    return verdict
