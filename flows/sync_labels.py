"""`sync-labels`: pull finished annotations from Label Studio into the label log.

Idempotent by Label Studio's annotation id and label: pulling twice appends nothing the
second time; an annotation corrected in Label Studio since the last sync (same id, a new
label, a later `updated_at`) appends one event, which wins as the latest. An annotation
deleted in Label Studio keeps its last synced label (the log is append-only); the run counts
those whose task is still there.

Every valid annotation is written; then, if some could not become labels (empty, a label
the task does not know, a request id loopwright never logged) or a queued sample has lost
its task in Label Studio (deleted there), the run fails with one line per problem saying
what to fix, so that nobody mistakes a partial sync for a complete one. Skipped
(cancelled) annotations are counted, not errors: a labeler may decline a task.

Disagreements are not errors either: every annotator's answer is kept, and the latest label
event per request id is its label (contract); the run reports how many ids are disputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.curate import LS_RETRIES, connect, shown_to_labeler
from flows.runtime import Runtime, open_runtime
from storage.label_log import LabelEvent, LabelLog
from storage.state import write_state

MAX_LISTED = 20  # problems spelled out in the error; the rest are counted


class AnnotationProblems(ValueError):
    """Some annotations could not become labels; the valid ones were written."""


def _problem(a, classes, known_ids: set[str]) -> tuple[str, str] | None:
    """(rejection kind, what to fix) when annotation `a` cannot become a label; None if it can.
    Cancelled (skipped) annotations are counted with an empty fix: they are not errors."""
    where = f"annotation {a.ls_annotation_id} on task {a.ls_task_id} (request_id {a.request_id!r})"
    if a.was_cancelled:
        return "cancelled", ""
    if not a.label:
        return (
            "empty",
            f"{where} has an empty result: choose one class in Label Studio, or delete it",
        )
    if a.label not in classes:
        return "unknown_label", (
            f"{where} has label {a.label!r}, not a class of the task: relabel it with one of "
            f"{list(classes)} (the project's labeling config must list exactly these)"
        )
    if a.request_id not in known_ids:
        return "unknown_request_id", (
            f"{where} labels a request_id loopwright never logged: import tasks with "
            "`loopwright curate` only, or delete this task"
        )
    return None


def to_events(annotations, classes, known_ids: set[str]) -> tuple[list[LabelEvent], dict[str, int]]:
    """Split exported annotations into label events and counted rejections."""
    events: list[LabelEvent] = []
    rejected = {"cancelled": 0, "empty": 0, "unknown_label": 0, "unknown_request_id": 0}
    for a in annotations:
        found = _problem(a, classes, known_ids)
        if found is not None:
            rejected[found[0]] += 1
            continue
        events.append(
            LabelEvent(
                request_id=a.request_id,
                label=a.label,
                source="labelstudio",
                annotator=a.annotator,
                ts=a.ts,
                ls_task_id=a.ls_task_id,
                ls_annotation_id=a.ls_annotation_id,
            )
        )
    return events, rejected


def problems_of(annotations, classes, known_ids: set[str]) -> list[str]:
    """One sentence per annotation that needs a person: which one, what is wrong, the fix."""
    found = (_problem(a, classes, known_ids) for a in annotations)
    return [fix for kind, fix in filter(None, found) if fix]


def deleted(
    logged: Mapping[int, tuple[int | None, str]], annotations, task_ids: set[int]
) -> list[int]:
    """Logged annotation ids that Label Studio no longer exports although their task is still
    in the project: deleted there. Their last labels stay in the log (reported, not undone)."""
    exported = {a.ls_annotation_id for a in annotations}
    return sorted(a for a, (task, _) in logged.items() if task in task_ids and a not in exported)


def disputed(events: list[LabelEvent]) -> list[str]:
    """Request ids whose annotators' latest answers differ (kept; the latest event wins)."""
    latest: dict[tuple[str, str], LabelEvent] = {}
    for e in sorted(events, key=lambda e: e.ts):
        latest[(e.request_id, e.annotator)] = e
    labels: dict[str, set[str]] = {}
    for (rid, _), e in latest.items():
        labels.setdefault(rid, set()).add(e.label)
    return sorted(rid for rid, found in labels.items() if len(found) > 1)


def showable(task, row: dict) -> bool:
    """Whether a queued row has something a labeler can be shown (rows queued by an older
    version without an input never had a task, and cannot get one: not a sync problem)."""
    try:
        shown_to_labeler(task, row)
    except ValueError:
        return False
    return True


@task(name="pull-annotations", **LS_RETRIES)
def pull(rt: Runtime, project_id: int) -> dict:
    with rt.labelstudio() as adapter:
        annotations = adapter.export_annotations(project_id)
        in_labelstudio = adapter.existing_request_ids(project_id)
    known = rt.queries.known_request_ids([a.request_id for a in annotations])
    events, rejected = to_events(annotations, rt.task.classes, known)
    problems = problems_of(annotations, rt.task.classes, known)
    log = LabelLog(rt.home)
    gone = deleted(log.logged_annotations(), annotations, set(in_labelstudio.values()))
    written = log.append(events, classes=rt.task.classes)
    queued = rt.queries.queued(unlabeled_only=True).to_pylist()
    waiting = [r["request_id"] for r in queued]
    absent = [r for r in queued if r["request_id"] not in in_labelstudio]
    unshowable = [r["request_id"] for r in absent if not showable(rt.task, r)]
    lost = [r["request_id"] for r in absent if r["request_id"] not in set(unshowable)]
    problems += [
        f"request_id {r!r} is queued for labeling but has no task in Label Studio project "
        f"{project_id} (deleted there?): run `loopwright curate` to import it again"
        for r in lost
    ]
    return {
        "exported": len(annotations),
        "new_labels": written,
        "rejected": rejected,
        "missing_tasks": len(lost),
        "unshowable_queued": len(unshowable),
        "deleted_annotations": len(gone),
        "disputed": len(disputed(events)),
        "pending": len(waiting),
        "problems": problems,
    }


@flow(name="sync-labels", log_prints=True)
def sync_labels_flow(config_path: str | None = None, home: str | None = None) -> dict:
    """Bring annotations from Label Studio into the label log: each answer once, and once
    more each time a labeler corrects it."""
    rt = open_runtime(config_path, home)
    project_id = connect(rt)
    result = pull(rt, project_id)
    problems = result.pop("problems")
    rej = ", ".join(f"{k} {v}" for k, v in result["rejected"].items() if v) or "none"
    summary = (
        f"{result['new_labels']} new labels of {result['exported']} annotations exported; "
        f"rejected: {rej}; {result['missing_tasks']} queued samples without a task; "
        f"{result['disputed']} request ids with disagreeing annotators (latest label wins); "
        f"{result['pending']} samples still wait for labels."
    )
    if result["unshowable_queued"]:
        summary += (
            f" {result['unshowable_queued']} queued samples have nothing a labeler can see (no "
            "input logged) and were never sent to Label Studio."
        )
    if result["deleted_annotations"]:
        summary += (
            f" {result['deleted_annotations']} synced annotations were deleted in Label Studio "
            "since; their last labels stay in the label log."
        )
    create_markdown_artifact(
        "# Label sync\n\n" + summary + "".join(f"\n- {p}" for p in problems[:MAX_LISTED]),
        key="sync-labels",
    )
    print(summary)
    if problems:
        more = len(problems) - MAX_LISTED
        raise AnnotationProblems(
            f"sync-labels wrote {result['new_labels']} labels but {len(problems)} problem(s) "
            "need a person:\n"
            + "\n".join(f"- {p}" for p in problems[:MAX_LISTED])
            + (f"\n- ... and {more} more" if more > 0 else "")
        )
    write_state(rt.home, "last_sync", {**result, "ts": datetime.now(UTC).isoformat()})
    return result
