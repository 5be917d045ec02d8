"""The label log: append-only label events. The latest event per request id is the label;
earlier ones and other annotators' answers are kept, so disagreement stays visible.

A Label Studio annotation is logged again when its label changed since the last event logged
for its id (a labeler corrected it: Label Studio keeps the id and bumps `updated_at`, the
event's `ts`), so the correction wins while a re-sync of unchanged annotations writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from storage.home import DataHome, StorageError
from storage.log_views import connect
from storage.parquet_parts import write_partitioned
from storage.queries import Queries
from storage.schemas import LABEL_SCHEMA

__all__ = ["LABEL_SCHEMA", "SOURCES", "LabelEvent", "LabelLog", "new_events"]

SOURCES = ("labelstudio", "feedback", "seed")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LabelEvent:
    """One answer: who said `request_id` is `label`, when (for Label Studio: when the
    annotation was last saved), and from which Label Studio annotation (its id and label
    make a repeated sync a no-op)."""

    request_id: str
    label: str
    source: str
    annotator: str
    ts: datetime = field(default_factory=_now)
    ls_task_id: int | None = None
    ls_annotation_id: int | None = None


def check_event(event: LabelEvent, classes: Sequence[str] | None = None) -> None:
    """Raise an error naming the field and the fix when `event` cannot enter the log."""
    rid = event.request_id
    if not isinstance(rid, str) or not rid.strip():
        raise StorageError(f"label event request_id is {rid!r}: pass the prediction's request id")
    if not isinstance(event.label, str) or not event.label.strip():
        raise StorageError(f"label for request_id {rid!r} is empty: pass a class name")
    if classes is not None and event.label not in classes:
        raise StorageError(
            f"label {event.label!r} for request_id {rid!r} is not a class: use one of {list(classes)}"
        )
    if event.source not in SOURCES:
        raise StorageError(
            f"source {event.source!r} for request_id {rid!r} is unknown: use one of {list(SOURCES)}"
        )
    if not isinstance(event.annotator, str) or not event.annotator.strip():
        raise StorageError(
            f"annotator for request_id {rid!r} is empty: name who labeled (a user, 'seed'...)"
        )
    ts = event.ts
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise StorageError(
            f"ts for request_id {rid!r} is {ts!r}: pass an aware datetime (datetime.now(timezone.utc))"
        )
    for name in ("ls_task_id", "ls_annotation_id"):
        value = getattr(event, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise StorageError(f"{name} for request_id {rid!r} is {value!r}: pass an int or None")


def new_events(events: Sequence[LabelEvent], logged: Mapping[int, str]) -> list[LabelEvent]:
    """The events that change what the log says, in the order given. `logged` maps each
    Label Studio annotation id to the label of its latest logged event.

    An event without an annotation id (feedback, seed) is always new. An annotation is new
    when its id was never logged or its label differs from the latest one logged for it (a
    correction); an unchanged annotation, or a save that changed nothing, is not. Comparing
    labels rather than `updated_at` makes no-op saves free and A -> B -> A three events.

    >>> def ann(label, ann_id):
    ...     return LabelEvent("r1", label, "labelstudio", "alice", ls_annotation_id=ann_id)
    >>> [(e.ls_annotation_id, e.label) for e in new_events([ann("3", 7), ann("5", 8)], {7: "3"})]
    [(8, '5')]
    >>> [e.label for e in new_events([ann("4", 7)], {7: "3"})]  # 7 corrected from 3 to 4
    ['4']
    """
    latest = dict(logged)
    fresh = []
    for e in events:
        ann_id = e.ls_annotation_id
        if ann_id is not None:
            if latest.get(ann_id) == e.label:
                continue
            latest[ann_id] = e.label
        fresh.append(e)
    return fresh


def events_table(events: Sequence[LabelEvent]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "request_id": e.request_id,
                "label": e.label,
                "source": e.source,
                "annotator": e.annotator,
                "ts": e.ts,
                "ls_task_id": e.ls_task_id,
                "ls_annotation_id": e.ls_annotation_id,
            }
            for e in events
        ],
        schema=LABEL_SCHEMA,
    )


class LabelLog:
    """Appends label events; several sync processes may append at once."""

    def __init__(self, home: DataHome, queries: Queries | None = None) -> None:
        self.home = home
        self.queries = queries  # a reader to reuse (its database), else one per call

    def known_annotation_ids(self) -> set[int]:
        """Label Studio annotation ids already logged."""
        return (self.queries or Queries(self.home)).annotation_ids()

    def logged_annotations(self) -> dict[int, tuple[int | None, str]]:
        """(ls_task_id, label) of the latest logged event of each Label Studio annotation id."""
        sql = """SELECT ls_annotation_id, ls_task_id, label FROM labels
                 WHERE ls_annotation_id IS NOT NULL QUALIFY row_number() OVER
                   (PARTITION BY ls_annotation_id
                    ORDER BY ts DESC, file_index DESC, file_row_number DESC) = 1"""
        q = self.queries
        con = connect(self.home, "labels", database=q and q.database, parts=q and q.parts)
        try:
            return {ann: (task, label) for ann, task, label in con.execute(sql).fetchall()}
        finally:
            con.close()

    def append(self, events: Sequence[LabelEvent], classes: Sequence[str] | None = None) -> int:
        """Validate all events, skip Label Studio annotations whose label is already the
        latest logged for their id (`new_events`), write the rest; return how many were
        written.

        Two syncs racing may both write one annotation version; readers keep one event per
        (`ls_annotation_id`, `ts`).
        """
        events = list(events)
        for event in events:
            if not isinstance(event, LabelEvent):
                raise StorageError(
                    f"label event is {type(event).__name__}: pass LabelEvent objects"
                )
            check_event(event, classes)
        if any(e.ls_annotation_id is not None for e in events):
            logged = {ann: label for ann, (_, label) in self.logged_annotations().items()}
            events = new_events(events, logged)
        if not events:
            return 0
        write_partitioned(events_table(events), self.home.labels, "ts")
        return len(events)
