"""What a finished drift check leaves behind: the verdict (state `last_drift`, and a JSON
file), the Evidently HTML report for people when it is due, and the markdown summary.

Why the report is rationed: it is most of a check's time, and its cost grows with the
columns, not the rows, so it is written per `[drift] html_report` (`curation.drift_rules.
report_due`: by default on the first check of a subject, a champion or a reference window,
and when the verdict flips drift <-> ok), on a sample, with the `[drift] report_columns`
most drifted features. A loop without artifacts (the benchmark) writes no report files;
the verdict and the state are the same.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from curation.drift_rules import report_due, shown_features
from flows.loop.cohorts import cohort_report
from flows.loop.estimate import estimate, estimate_line
from storage.state import read_state, write_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

REPORT_STATE = "last_drift_report"


def latest_report(loop: Loop) -> dict:
    state = read_state(loop.home, REPORT_STATE) or {}
    return {"report_html": state.get("html"), "report_ts": state.get("written_at")}


def waiting(loop: Loop, champion: str | None, reason: str, now: datetime) -> dict:
    verdict = {
        "status": "waiting",
        "dataset_drift": False,
        "reason": reason,
        "champion": champion,
        **latest_report(loop),
        "report_written": False,
        "ts": now.isoformat(),
    }
    write_state(loop.home, "last_drift", verdict)
    return verdict


def write_human_report(loop: Loop, run_id, verdict, ref_x, ref_out, cur_x, cur_out) -> dict:
    from curation.drift_report import frames_for_report, write_report

    classes, out = loop.task.classes, loop.home.drift_reports
    shown = shown_features(verdict["columns"][: ref_x.shape[1]], loop.cfg.drift.report_columns)
    names = [verdict["columns"][j]["column"] for j in shown]

    def frame(x, outputs):
        preds = [classes[i] for i in outputs.pred]
        return frames_for_report(x[:, shown], preds, outputs.confidence, names)

    summary = write_report(
        frame(ref_x, ref_out),
        frame(cur_x, cur_out),
        out / f"{run_id}.html",
        out / f"{run_id}.evidently.json",
        sample_rows=loop.cfg.drift.report_sample_rows,
    )
    return {**summary, "features_shown": names}


def finish(loop: Loop, now, run_id, result, champion, subject, reference, current, report) -> dict:
    """The verdict of a finished comparison: the human report when due, the JSON, the state.
    `subject` is what a report is about (a champion, or a reference window): its first check
    writes one."""
    status, numbers = ("drift" if result.dataset_drift else "ok"), result.to_dict()
    previous = read_state(loop.home, REPORT_STATE)
    due, why = report_due(loop.cfg.drift.html_report, previous, subject, status)
    if due and not loop.artifacts:
        due, why = False, "artifacts are off (the benchmark writes no reports)"
    report_state = {**(previous or {}), "champion": subject, "status": status}
    summary = None
    if due:
        ref_x, ref_out, cur_x, cur_out = report
        summary = write_human_report(loop, run_id, numbers, ref_x, ref_out, cur_x(), cur_out)
        report_state.update(html=summary["html_path"], written_at=now.isoformat())
    write_state(loop.home, REPORT_STATE, report_state)
    verdict = {
        "status": status,
        **numbers,
        "champion": champion,
        "reference": reference,
        "current": current,
        "evidently": summary,
        **latest_report(loop),
        "report_written": due,
        "report_why": why,
        "estimate": estimate(loop, champion),  # label-free accuracy (flows/loop/estimate.py)
        "ts": now.isoformat(),
    }
    # each [[cohort]]: share, confidence, drift and estimate (flows/loop/cohorts.py)
    verdict["cohorts"] = cohort_report(loop, champion, verdict["estimate"])
    if loop.artifacts:
        out = loop.home.drift_reports
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{run_id}.json").write_text(json.dumps(verdict, indent=2, default=str))
    write_state(loop.home, "last_drift", verdict)
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
        f"Estimated accuracy without labels: {estimate_line(verdict)}.",
        report,
    ]
    lines += [cohort_line(name, c) for name, c in (verdict.get("cohorts") or {}).items()]
    return "\n".join(lines) + "\n"


def cohort_line(name: str, c: dict) -> str:
    """One markdown line per cohort.

    >>> cohort_line("night", {"rows": 40, "share": 0.2, "confidence": 0.71,
    ...   "reference_share": 0.1, "reference_confidence": 0.9, "drift_share": 0.6,
    ...   "dataset_drift": True, "estimate": 0.66})
    '- cohort `night`: 40 rows (share 0.1 → 0.2), confidence 0.9 → 0.71, DRIFT (share 0.6), estimated accuracy 0.66'
    """
    drift = (
        "no drift statistics"
        if c.get("dataset_drift") is None
        else f"{'DRIFT' if c['dataset_drift'] else 'no drift'} (share {c['drift_share']})"
    )
    est = c.get("estimate")
    return (
        f"- cohort `{name}`: {c.get('rows', 0)} rows (share {c.get('reference_share')} → "
        f"{c.get('share')}), confidence {c.get('reference_confidence')} → {c.get('confidence')}, "
        f"{drift}, estimated accuracy {'n/a' if est is None else est}"
    )
