"""`drift-check`: compare recent traffic with the champion's reference window (its training rows).

The machine's verdict comes from NumPy statistics over every row (fast at millions of
rows); people get an Evidently HTML report computed on a sample. Both are written under
`<home>/reports/drift/`, and the verdict is kept as state for triggers and `status`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from curation.drift import compute_drift
from curation.drift_report import frames_for_report, write_report
from flows.runtime import Runtime, open_runtime
from storage.state import write_state

COLUMNS = ["request_id", "ts", "role", "features", "input"]


def feature_matrix(table: pa.Table) -> np.ndarray:
    col = table.column("features").combine_chunks()
    n = table.num_rows
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(n, -1) if n else np.zeros((0, 0), dtype=np.float32)


def reference_rows(rt: Runtime, champion: str, n: int) -> pa.Table:
    """The reference window: a seeded sample of the rows the champion was trained on.

    Why its training rows and not the first rows it served: they exist the moment a model is
    promoted, so a fresh champion is watched from its first batch, and "what the model
    learned from" is the distribution whose departure matters.
    """
    from storage.datasets import load_dataset

    ds_id = rt.registry.meta(champion).get("dataset_version")
    if not ds_id:
        return pa.table({"features": pa.array([], pa.list_(pa.float32()))})
    ids = list(load_dataset(rt.home, ds_id).train_ids)
    if len(ids) > n:
        rng = np.random.default_rng(0)
        ids = [ids[i] for i in sorted(rng.choice(len(ids), size=n, replace=False))]
    labeled = rt.queries.labeled_examples()
    return labeled.filter(
        pc.is_in(labeled.column("request_id"), value_set=pa.array(ids, pa.string()))
    )


def scored(
    rt: Runtime, champion: str, table: pa.Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, predicted classes and confidences, both windows scored by the same model."""
    x = rt.task.decode_inputs(table.column("input").to_pylist())
    probs = rt.predictor(champion)(x)
    return rt.task.features(x), probs.argmax(axis=1), probs.max(axis=1)


def waiting(rt: Runtime, champion: str | None, reason: str, now: datetime) -> dict:
    verdict = {
        "status": "waiting",
        "dataset_drift": False,
        "reason": reason,
        "champion": champion,
        "ts": now.isoformat(),
    }
    write_state(rt.home, "last_drift", verdict)
    return verdict


def check(rt: Runtime) -> dict:
    cfg = rt.cfg.drift
    champion = rt.registry.get("champion")
    now = datetime.now(UTC)
    run_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    if champion is None:
        return waiting(rt, None, "no champion yet", now)
    cur = rt.queries.recent_predictions(cfg.window_rows, columns=COLUMNS)
    cur = cur.filter(pc.equal(cur.column("role"), "champion")) if cur.num_rows else cur
    ref = reference_rows(rt, champion, cfg.reference_rows)
    if cur.num_rows < cfg.window_rows or ref.num_rows == 0:
        return waiting(
            rt,
            champion,
            f"{cur.num_rows} recent rows ({cfg.window_rows} needed) and "
            f"{ref.num_rows} reference rows",
            now,
        )
    classes = rt.task.classes
    ref_x, ref_p, ref_c = scored(rt, champion, ref)
    cur_x, cur_p, cur_c = scored(rt, champion, cur)
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
        "reference": {"rows": ref.num_rows, "what": "sample of the champion's training rows"},
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
