"""How exported annotations become label events, and what a sync must tell a person.

Pure rules over what the labeler exported (`LSAnnotation`s) and what the label log holds;
the engine's sync stage (`flows/loop/sync.py`) reads both and writes the events.

Idempotent by the labeler's annotation id and label: the label log skips an event it holds
already; an annotation corrected since the last sync (same id, a new label, a later
`updated_at`) is one more event, which wins as the latest. Annotations that cannot become
labels (empty, a label the task does not know, a request id loopwright never logged) are
counted and each gets one sentence saying what to fix; skipped (cancelled) annotations are
counted, not errors: a labeler may decline a task. Disagreements are not errors either:
every annotator's answer is kept, and the latest label event per request id is its label.
"""

from __future__ import annotations

from collections.abc import Mapping

from storage.label_log import LabelEvent

MAX_LISTED = 20  # problems spelled out in the error; the rest are counted


class AnnotationProblems(ValueError):
    """Some annotations could not become labels; the valid ones were written.

    `result` is the sync's result (what was written and counted), `problems` one sentence
    per problem, so a caller can report them before the run fails.
    """

    def __init__(self, result: dict, problems: list[str]) -> None:
        self.result, self.problems = result, list(problems)
        more = len(problems) - MAX_LISTED
        super().__init__(
            f"sync-labels wrote {result['new_labels']} labels but {len(problems)} problem(s) "
            "need a person:\n"
            + "\n".join(f"- {p}" for p in problems[:MAX_LISTED])
            + (f"\n- ... and {more} more" if more > 0 else "")
        )

    def __reduce__(self):  # picklable (Prefect keeps a failed run's exception)
        return (type(self), (self.result, self.problems))


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
