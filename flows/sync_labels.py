"""`sync-labels`: pull finished annotations from Label Studio into the label log.

Idempotent by Label Studio's annotation id: pulling twice appends nothing the second
time. Annotations that cannot become labels (skipped/cancelled, empty, a label the task
does not know, a request id loopwright never logged) are counted and reported, never
written, so one bad annotation cannot block the others.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.curate import labeling_project
from flows.runtime import Runtime, open_runtime
from storage.label_log import LabelEvent, LabelLog
from storage.state import write_state


def to_events(annotations, classes, known_ids: set[str]) -> tuple[list[LabelEvent], dict[str, int]]:
    """Split exported annotations into label events and counted rejections."""
    events: list[LabelEvent] = []
    rejected = {"cancelled": 0, "empty": 0, "unknown_label": 0, "unknown_request_id": 0}
    for a in annotations:
        if a.was_cancelled:
            rejected["cancelled"] += 1
        elif not a.label:
            rejected["empty"] += 1
        elif a.label not in classes:
            rejected["unknown_label"] += 1
        elif a.request_id not in known_ids:
            rejected["unknown_request_id"] += 1
        else:
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


@task(name="pull-annotations", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def pull(rt: Runtime) -> dict:
    adapter = rt.labelstudio()
    project_id = labeling_project(rt, adapter)
    annotations = adapter.export_annotations(project_id)
    known = rt.queries.known_request_ids([a.request_id for a in annotations])
    events, rejected = to_events(annotations, rt.task.classes, known)
    written = LabelLog(rt.home).append(events, classes=rt.task.classes)
    return {
        "exported": len(annotations),
        "new_labels": written,
        "rejected": rejected,
        "pending": rt.queries.pending_labels(),
    }


@flow(name="sync-labels", log_prints=True)
def sync_labels_flow(config_path: str | None = None, home: str | None = None) -> dict:
    """Bring annotations from Label Studio into the label log, exactly once each."""
    rt = open_runtime(config_path, home)
    result = pull(rt)
    write_state(rt.home, "last_sync", {**result, "ts": datetime.now(UTC).isoformat()})
    rej = ", ".join(f"{k} {v}" for k, v in result["rejected"].items() if v) or "none"
    create_markdown_artifact(
        f"# Label sync\n\n{result['new_labels']} new labels of {result['exported']} annotations "
        f"exported; rejected: {rej}; {result['pending']} samples still wait for labels.\n",
        key="sync-labels",
    )
    print(
        f"{result['new_labels']} new labels ({result['exported']} exported, rejected: {rej}); "
        f"{result['pending']} pending"
    )
    return result
