"""What a finished `drift-check` leaves behind: the verdict (JSON, state `last_drift`), the
Evidently HTML report for people when it is due, and the markdown summary.

Why the report is rationed: it is most of a check's time, and its cost grows with the
columns, not the rows, so it is written per `[drift] html_report` (by default on the first
check of a subject, a champion or a reference window, and when the verdict flips drift <->
ok), on a sample, with the `[drift] report_columns` most drifted features.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from storage.state import read_state, write_state

if TYPE_CHECKING:
    from flows.runtime import Runtime

REPORT_STATE = "last_drift_report"


def report_due(mode: str, previous: dict | None, subject: str, status: str) -> tuple[bool, str]:
    """Whether to write the Evidently HTML report at this check, and why. `subject` is a
    champion's version, or "window: <the reference window>".

    >>> report_due("on_change", {"champion": "v1", "status": "ok"}, "v1", "drift")
    (True, 'verdict changed ok -> drift')
    >>> report_due("on_change", {"champion": "v1", "status": "ok"}, "v1", "ok")
    (False, 'verdict unchanged (ok) for champion v1')
    >>> report_due("on_change", None, "window: rows before 2026-05-08", "ok")
    (True, 'first check against the reference window (rows before 2026-05-08)')
    """
    if subject.startswith("window: "):
        who = f"the reference window ({subject.removeprefix('window: ')})"
    else:
        who = f"champion {subject}"
    if mode in {"always", "never"}:
        return mode == "always", f"html_report = {mode}"
    if not previous or previous.get("champion") != subject:
        return True, f"first check {'against' if subject.startswith('window: ') else 'of'} {who}"
    if previous.get("status") != status:
        return True, f"verdict changed {previous.get('status')} -> {status}"
    return False, f"verdict unchanged ({status}) for {who}"


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
    >>> shown_features([{"score": 0.04, "score_kind": "p_value"}, {"score": 0.9, "score_kind": "p_value"}], 1)
    [0]
    """

    def strength(c: dict) -> float:  # p-values: the smaller, the stronger the evidence
        return -c["score"] if c.get("score_kind") == "p_value" else c["score"]

    order = sorted(range(len(columns)), key=lambda j: (-strength(columns[j]), j))
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


def finish(rt, now, run_id, result, champion, subject, reference, current, report) -> dict:
    """The verdict of a finished comparison: the human report when due, the JSON, the state.
    `subject` is what a report is about (a champion, or a reference window): its first check
    writes one."""
    status, numbers = ("drift" if result.dataset_drift else "ok"), result.to_dict()
    previous = read_state(rt.home, REPORT_STATE)
    due, why = report_due(rt.cfg.drift.html_report, previous, subject, status)
    report_state = {**(previous or {}), "champion": subject, "status": status}
    summary = None
    if due:
        ref_x, ref_out, cur_x, cur_out = report
        summary = write_human_report(rt, run_id, numbers, ref_x, ref_out, cur_x(), cur_out)
        report_state.update(html=summary["html_path"], written_at=now.isoformat())
    write_state(rt.home, REPORT_STATE, report_state)
    verdict = {
        "status": status,
        **numbers,
        "champion": champion,
        "reference": reference,
        "current": current,
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
    ref = verdict["reference"]
    against = (
        f"Champion `{verdict['champion']}`"
        if ref.get("kind") != "window"
        else f"Reference: {ref['what']} ({ref['rows']} rows, {ref['from']} .. {ref['to']})"
    )
    tests = (
        "p-value tests (K-S / chi-square / z, reference <= 1000 rows)"
        if verdict.get("rule") == "p_value"
        else "distances (normed Wasserstein / Jensen-Shannon)"
    )
    pred = verdict["prediction"]
    lines = [
        f"# Drift check: {'DRIFT' if verdict['dataset_drift'] else 'no drift'}",
        "",
        f"{against}; {verdict['n_drifted']} of {verdict['n_columns']} "
        f"columns drifted (share {verdict['drift_share']:.2f}) over "
        f"{verdict['current']['rows']} rows ({verdict['current']['rescored']} re-scored), "
        f"by {tests}.",
        f"Predicted class: {pred['method']} {pred['score']:.3g} "
        f"(threshold {pred['threshold']}); mean confidence "
        f"{verdict['confidence_ref']:.3f} → {verdict['confidence_cur']:.3f}.",
        report,
    ]
    return "\n".join(lines) + "\n"
