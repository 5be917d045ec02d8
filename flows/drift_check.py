"""`drift-check`: compare recent traffic with the champion's reference window (its training rows).

The path is the benchmarked one (bench/RESULTS.md, "Drift"), so memory stays bounded
whatever `[drift] window_rows` is:
* feature statistics: the current window's logged `features`, streamed by
  `Queries.window_batches` and summarised by `compute_drift_streaming`;
* model outputs (predicted class, confidence): the champion re-scores the reference and a
  seeded sample of at most `[drift] rescore_rows` rows of the window, so a freshly promoted
  champion is judged on its own outputs and a 10M-row window never decodes 10M inputs.

People get an Evidently HTML report on a sample, written when `[drift] html_report` asks
(by default on the first check of a champion and when the verdict flips drift <-> ok), of the
predicted class, the confidence and the `[drift] report_columns` most drifted features: the
report is most of the check's time, and its cost grows with the columns, not the rows. Everything lands under `<home>/reports/drift/`; the verdict is
kept as state (`last_drift`) for triggers and `status`, with where the latest report is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from curation.drift import ModelOutputs, compute_drift_streaming
from flows.runtime import Runtime, open_runtime
from storage.schemas import PREDICTION_SCHEMA
from storage.state import read_state, write_state

SAMPLE_COLUMNS = ("request_id", "features", "input")
REPORT_STATE = "last_drift_report"


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


def with_inputs(table: pa.Table) -> pa.Table:
    """Rows the champion can re-score (an input stored in the log)."""
    if "input" not in table.column_names:
        return table.slice(0, 0)
    return table.filter(pc.is_valid(table.column("input")))


def current_sample(rt: Runtime, rows: int) -> pa.Table:
    """A seeded uniform sample of at most `rows` rows of the current window (request id order)."""
    batches = list(
        rt.queries.window_batches(
            rt.cfg.drift.window_rows, role="champion", columns=SAMPLE_COLUMNS, sample_rows=rows
        )
    )
    if not batches:
        return pa.schema([PREDICTION_SCHEMA.field(c) for c in SAMPLE_COLUMNS]).empty_table()
    return pa.Table.from_batches(batches).sort_by("request_id")


class Tracked:
    """Passes batches through, remembering how many rows went by and the latest `ts`."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self.batches, self.rows, self.last_ts = batches, 0, None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.batches:
            if batch.num_rows:
                self.rows += batch.num_rows
                top = pc.max(batch.column("ts")).as_py()
                self.last_ts = top if self.last_ts is None else max(self.last_ts, top)
            yield batch


def scored(predict, task, inputs: list[bytes]) -> tuple[np.ndarray, ModelOutputs]:
    """Features (as `score-batch` logs them) and the champion's outputs on these inputs."""
    x = task.decode_inputs(inputs)
    probs = predict(x)
    return task.features(x), ModelOutputs(probs.argmax(axis=1), probs.max(axis=1))


def vectors(x: np.ndarray) -> pa.Table:
    """An (N, F) matrix as a one-column `features` table (what the streaming sketches read)."""
    flat = pa.array(np.ascontiguousarray(x, dtype=np.float32).reshape(-1))
    return pa.table({"features": pa.FixedSizeListArray.from_arrays(flat, x.shape[1])})


def report_due(mode: str, previous: dict | None, champion: str, status: str) -> tuple[bool, str]:
    """Whether to write the Evidently HTML report at this check, and why.

    >>> report_due("on_change", {"champion": "v1", "status": "ok"}, "v1", "drift")
    (True, 'verdict changed ok -> drift')
    >>> report_due("on_change", {"champion": "v1", "status": "ok"}, "v1", "ok")
    (False, 'verdict unchanged (ok) for champion v1')
    """
    if mode in {"always", "never"}:
        return mode == "always", f"html_report = {mode}"
    if not previous or previous.get("champion") != champion:
        return True, f"first check of champion {champion}"
    if previous.get("status") != status:
        return True, f"verdict changed {previous.get('status')} -> {status}"
    return False, f"verdict unchanged ({status}) for champion {champion}"


def latest_report(rt: Runtime) -> dict:
    state = read_state(rt.home, REPORT_STATE) or {}
    return {"report_html": state.get("html"), "report_ts": state.get("written_at")}


def waiting(rt: Runtime, champion: str | None, reason: str, now: datetime) -> dict:
    verdict = {
        "status": "waiting",
        "dataset_drift": False,
        "reason": reason,
        "champion": champion,
        **latest_report(rt),
        "report_written": False,
        "ts": now.isoformat(),
    }
    write_state(rt.home, "last_drift", verdict)
    return verdict


def shown_features(columns: list[dict], limit: int) -> list[int]:
    """The feature columns the human report shows: the `limit` with the highest drift scores
    (all when 0). Evidently's cost grows with the columns (~0.09 s CPU each, whatever the rows
    up to a few thousand), and people read the columns that moved first.

    >>> shown_features([{"score": 0.1}, {"score": 0.5}, {"score": 0.3}], 2)
    [1, 2]
    """
    order = sorted(range(len(columns)), key=lambda j: (-columns[j]["score"], j))
    return order[:limit] if limit else order


def write_human_report(rt, run_id, verdict, ref_x, ref_out, cur_x, cur_out) -> dict:
    from curation.drift_report import frames_for_report, write_report

    classes, out = rt.task.classes, rt.home.drift_reports
    shown = shown_features(verdict["columns"][: ref_x.shape[1]], rt.cfg.drift.report_columns)
    names = [verdict["columns"][j]["column"] for j in shown]

    def frame(x, outputs):
        preds = [classes[i] for i in outputs.pred]
        return frames_for_report(x[:, shown], preds, outputs.confidence, names)

    summary = write_report(
        frame(ref_x, ref_out),
        frame(cur_x, cur_out),
        out / f"{run_id}.html",
        out / f"{run_id}.evidently.json",
        sample_rows=rt.cfg.drift.report_sample_rows,
    )
    return {**summary, "features_shown": names}


def check(rt: Runtime) -> dict:
    cfg = rt.cfg.drift
    champion = rt.registry.get("champion")
    now = datetime.now(UTC)
    run_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    if champion is None:
        return waiting(rt, None, "no champion yet", now)
    ref = with_inputs(reference_rows(rt, champion, cfg.reference_rows))
    wanted = min(cfg.rescore_rows, cfg.window_rows)
    sample = current_sample(rt, wanted)
    if sample.num_rows < wanted or ref.num_rows == 0:
        return waiting(
            rt,
            champion,
            f"{sample.num_rows} recent rows ({cfg.window_rows} needed) and "
            f"{ref.num_rows} reference rows with inputs",
            now,
        )
    sample = with_inputs(sample)
    if sample.num_rows == 0:
        reason = "the window's rows have no stored input: the champion cannot re-score them"
        return waiting(rt, champion, reason, now)
    predict = rt.predictor(champion)
    ref_x, ref_out = scored(predict, rt.task, ref.column("input").to_pylist())
    _, cur_out = scored(predict, rt.task, sample.column("input").to_pylist())
    window = Tracked(
        rt.queries.window_batches(cfg.window_rows, role="champion", columns=("ts", "features"))
    )
    result = compute_drift_streaming(
        [vectors(ref_x)],
        window,
        rt.task.classes,
        numeric_threshold=cfg.numeric_threshold,
        categorical_threshold=cfg.categorical_threshold,
        drift_share=cfg.drift_share,
        outputs=(ref_out, cur_out),
    )
    if window.rows < cfg.window_rows:
        reason = f"{window.rows} recent rows ({cfg.window_rows} needed)"
        return waiting(rt, champion, reason, now)
    status, numbers = ("drift" if result.dataset_drift else "ok"), result.to_dict()
    previous = read_state(rt.home, REPORT_STATE)
    due, why = report_due(cfg.html_report, previous, champion, status)
    report_state = {**(previous or {}), "champion": champion, "status": status}
    summary = None
    if due:
        cur_x = feature_matrix(sample)
        summary = write_human_report(rt, run_id, numbers, ref_x, ref_out, cur_x, cur_out)
        report_state.update(html=summary["html_path"], written_at=now.isoformat())
    write_state(rt.home, REPORT_STATE, report_state)
    verdict = {
        "status": status,
        **numbers,
        "champion": champion,
        "reference": {
            "rows": ref.num_rows,
            "rescored": ref.num_rows,
            "what": "sample of the champion's training rows",
        },
        "current": {
            "rows": window.rows,
            "rescored": sample.num_rows,
            "to": str(window.last_ts),
        },
        "evidently": summary,
        **latest_report(rt),
        "report_written": due,
        "report_why": why,
        "ts": now.isoformat(),
    }
    out = rt.home.drift_reports
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{run_id}.json").write_text(json.dumps(verdict, indent=2, default=str))
    write_state(rt.home, "last_drift", verdict)
    return verdict


@task(name="drift-statistics", cache_policy=NO_CACHE)
def run_check(rt: Runtime) -> dict:
    return check(rt)


def markdown(verdict: dict) -> str:
    if verdict["status"] == "waiting":
        return f"# Drift check: waiting\n\n{verdict['reason']}\n"
    if verdict["report_written"]:
        report = f"Evidently report (sample): `{verdict['report_html']}`"
    else:
        report = (
            f"No Evidently report this time ({verdict['report_why']}); latest: "
            f"`{verdict['report_html']}` ({verdict['report_ts']})"
        )
    lines = [
        f"# Drift check: {'DRIFT' if verdict['dataset_drift'] else 'no drift'}",
        "",
        f"Champion `{verdict['champion']}`; {verdict['n_drifted']} of {verdict['n_columns']} "
        f"feature columns drifted (share {verdict['drift_share']:.2f}) over "
        f"{verdict['current']['rows']} rows ({verdict['current']['rescored']} re-scored).",
        f"Predicted-class drift score {verdict['prediction']['score']:.3f} "
        f"(threshold {verdict['prediction']['threshold']}); mean confidence "
        f"{verdict['confidence_ref']:.3f} → {verdict['confidence_cur']:.3f}.",
        report,
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
