"""The `sync-labels` stage: pull finished annotations from the labeler into the label log.

Every valid annotation is written; then, if some could not become labels or a queued sample
has lost its task in the labeler (deleted there), the stage raises `AnnotationProblems`
with one line per problem saying what to fix (and the result, so the caller can still
report it), so that nobody mistakes a partial sync for a complete one. The rules of what
becomes a label are `curation.label_sync`'s. An annotation deleted in Label Studio keeps
its last synced label (the log is append-only); the stage counts those whose task is still
there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from curation.label_sync import AnnotationProblems, deleted, disputed, problems_of, to_events
from flows.loop.curate import connect, shown_to_labeler
from storage.label_log import LabelLog
from storage.state import write_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop


def showable(task, row: dict) -> bool:
    """Whether a queued row has something a labeler can be shown (rows queued by an older
    version without an input never had a task, and cannot get one: not a sync problem)."""
    try:
        shown_to_labeler(task, row)
    except ValueError:
        return False
    return True


def pull(loop: Loop, project_id: int) -> dict:
    """Export, write the valid label events, count the rest; `problems` lists what a person
    must fix."""
    with loop.labelstudio() as adapter:
        annotations = adapter.export_annotations(project_id)
        in_labelstudio = adapter.existing_request_ids(project_id)
    classes = loop.task.classes
    known = loop.queries.known_request_ids([a.request_id for a in annotations])
    events, rejected = to_events(annotations, classes, known)
    problems = problems_of(annotations, classes, known)
    log = LabelLog(loop.home, loop.queries)
    gone = deleted(log.logged_annotations(), annotations, set(in_labelstudio.values()))
    written = log.append(events, classes=classes)
    queued = loop.queries.queued(unlabeled_only=True).to_pylist()
    waiting = [r["request_id"] for r in queued]
    absent = [r for r in queued if r["request_id"] not in in_labelstudio]
    unshowable = [r["request_id"] for r in absent if not showable(loop.task, r)]
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


def sync(loop: Loop) -> dict:
    """Connect, pull; the result (without `problems`) is `last_sync`, or the problems raise."""
    project_id = loop.steps("connect-labelstudio", connect, loop)
    result = loop.steps("pull-annotations", pull, loop, project_id)
    problems = result.pop("problems")
    if problems:
        raise AnnotationProblems(result, problems)
    write_state(loop.home, "last_sync", {**result, "ts": datetime.now(UTC).isoformat()})
    return result


def summary(result: dict) -> str:
    """The sync in one paragraph, as the flow prints it."""
    rej = ", ".join(f"{k} {v}" for k, v in result["rejected"].items() if v) or "none"
    text = (
        f"{result['new_labels']} new labels of {result['exported']} annotations exported; "
        f"rejected: {rej}; {result['missing_tasks']} queued samples without a task; "
        f"{result['disputed']} request ids with disagreeing annotators (latest label wins); "
        f"{result['pending']} samples still wait for labels."
    )
    if result["unshowable_queued"]:
        text += (
            f" {result['unshowable_queued']} queued samples have nothing a labeler can see (no "
            "input logged) and were never sent to Label Studio."
        )
    if result["deleted_annotations"]:
        text += (
            f" {result['deleted_annotations']} synced annotations were deleted in Label Studio "
            "since; their last labels stay in the label log."
        )
    return text
