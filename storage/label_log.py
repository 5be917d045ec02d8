"""The label log: append-only label events. The latest event per request id is the label;
earlier ones and other annotators' answers are kept, so disagreement stays visible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from storage.home import DataHome, StorageError
from storage.parquet_parts import write_partitioned
from storage.queries import Queries
from storage.schemas import LABEL_SCHEMA

__all__ = ["LABEL_SCHEMA", "SOURCES", "LabelEvent", "LabelLog"]

SOURCES = ("labelstudio", "feedback", "seed")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LabelEvent:
    """One answer: who said `request_id` is `label`, when, and from which Label Studio
    annotation (its id makes a repeated sync a no-op)."""

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

    def __init__(self, home: DataHome) -> None:
        self.home = home

    def known_annotation_ids(self) -> set[int]:
        """Label Studio annotation ids already logged."""
        return Queries(self.home).annotation_ids()

    def append(self, events: Sequence[LabelEvent], classes: Sequence[str] | None = None) -> int:
        """Validate all events, skip those whose `ls_annotation_id` is already logged (or
        repeated in this call), write the rest; return how many were written.

        Two syncs racing may both write one annotation; readers keep one per annotation id.
        """
        events = list(events)
        for event in events:
            if not isinstance(event, LabelEvent):
                raise StorageError(
                    f"label event is {type(event).__name__}: pass LabelEvent objects"
                )
            check_event(event, classes)
        if any(e.ls_annotation_id is not None for e in events):
            seen = self.known_annotation_ids()
            fresh = []
            for e in events:
                if e.ls_annotation_id is not None:
                    if e.ls_annotation_id in seen:
                        continue
                    seen.add(e.ls_annotation_id)
                fresh.append(e)
            events = fresh
        if not events:
            return 0
        write_partitioned(events_table(events), self.home.labels, "ts")
        return len(events)
