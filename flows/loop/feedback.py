"""Simulated user feedback: a share of requests whose users say the true class.

Why a rule of its own: the demo (POST /v1/feedback to the serving endpoint) and the
benchmark (label events in process) must give feedback on the same requests with the same
labels, or their rounds differ. Who gives feedback is a pure function of the request id (a
hash, `storage.routing.bucket` of `feedback:<request_id>`: independent of the canary split,
which hashes the bare id), the label is the simulation's truth. Feedback is unbiased
evidence for a rollout (`storage.rollout_evidence` counts source `feedback`), and, like any
label, training data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from storage.routing import bucket

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

SOURCE = "feedback"
ANNOTATOR = "feedback"  # the serving endpoint's default annotator for feedback


def gives_feedback(request_id: str, share: float) -> bool:
    """True when this request's user answers (a stable `share` of all requests).

    >>> gives_feedback("r1", 0.0), gives_feedback("r1", 1.0)
    (False, True)
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"[demo] feedback_share = {share!r}: use a share in [0, 1], e.g. 0.3")
    return share > 0 and bucket(f"feedback:{request_id}") < share


def simulated_feedback(
    request_ids: Sequence[str], truth: Mapping[str, str], share: float
) -> list[tuple[str, str]]:
    """(request_id, true label) of the requests whose users give feedback, in batch order.

    >>> simulated_feedback(["a", "b"], {"a": "1", "b": "2"}, 1.0)
    [('a', '1'), ('b', '2')]
    """
    missing = [r for r in request_ids if gives_feedback(r, share) and r not in truth]
    if missing:
        raise ValueError(
            f"no true label for request {missing[0]!r}: feedback needs the simulation's truth "
            "for every request it answers"
        )
    return [(r, truth[r]) for r in request_ids if gives_feedback(r, share)]


def log_feedback(
    loop: Loop, pairs: Sequence[tuple[str, str]], ts: Mapping[str, datetime] | None = None
) -> int:
    """Append the feedback as label events (source `feedback`), as `POST /v1/feedback`
    would; `ts`: each request's time (a replay's logical clock), else now."""
    from storage.label_log import LabelEvent, LabelLog

    if not pairs:
        return 0
    events = []
    for request_id, label in pairs:
        when = (ts or {}).get(request_id)
        kw = {"ts": when} if when is not None else {}
        events.append(LabelEvent(request_id, label, SOURCE, ANNOTATOR, **kw))
    return LabelLog(loop.home).append(events, classes=loop.task.classes)


THUMBS = ("up", "down")


def read_feedback(path) -> list[dict]:
    """The rows of a feedback file: JSON Lines (`.jsonl`, `.json`: one object a line) or
    Parquet; each row with its `line` (JSONL: the file's line number; Parquet: row number,
    from 1) so errors can name it."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--input {str(p)!r} does not exist: pass a JSONL or Parquet file")
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(p).to_pylist()
        return [{**r, "line": i} for i, r in enumerate(rows, start=1)]
    out = []
    for i, text in enumerate(p.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p.name} line {i}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{p.name} line {i}: pass one JSON object per line")
        out.append({**row, "line": i})
    return out


def check_feedback(
    rows: Sequence[Mapping], classes: Sequence[str], preds: Mapping[str, str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """(request_id, label) label events and the thumbs-down ids to queue, from feedback rows;
    any bad row is a ValueError naming its line and field (so nothing is written).

    A row is `request_id` with a `label` (a class) and/or `thumbs` ("up"/"down"). Thumbs up
    without a label is the user confirming the prediction: a label equal to the logged
    `pred`. Thumbs down without a label says only "wrong": the row goes to labelers first.
    `preds`: request_id -> logged predicted class (ids not in it are not in the log).

    >>> check_feedback([{"line": 1, "request_id": "a", "label": "2"},
    ...                 {"line": 2, "request_id": "b", "thumbs": "up"},
    ...                 {"line": 3, "request_id": "c", "thumbs": "down"}],
    ...                ["1", "2"], {"a": "1", "b": "1", "c": "2"})
    ([('a', '2'), ('b', '1')], ['c'])
    """
    known = {str(c) for c in classes}
    labels, down, seen = [], [], {}
    for row in rows:
        where = f"line {row.get('line', '?')}"
        unknown = sorted(set(row) - {"line", "request_id", "label", "thumbs"})
        if unknown:
            raise ValueError(
                f"{where}: unknown field {unknown[0]!r}: use request_id, label, thumbs"
            )
        rid = row.get("request_id")
        if not isinstance(rid, str) or not rid.strip():
            raise ValueError(f"{where}: request_id is {rid!r}: pass the prediction's request id")
        if rid in seen:
            raise ValueError(
                f"{where}: request_id {rid!r} is already on line {seen[rid]}: one row per id"
            )
        seen[rid] = row.get("line", "?")
        if rid not in preds:
            raise ValueError(
                f"{where}: request_id {rid!r} is not in the prediction log: feedback is on a "
                "logged prediction (log-predictions first)"
            )
        label, thumbs = row.get("label"), row.get("thumbs")
        if thumbs is not None and thumbs not in THUMBS:
            raise ValueError(f'{where}: thumbs = {thumbs!r}: use "up" or "down" (or leave it out)')
        if label is None and thumbs is None:
            raise ValueError(f"{where}: request_id {rid!r} has neither label nor thumbs: give one")
        if label is not None:
            label = str(label)
            if label not in known:
                raise ValueError(
                    f"{where}: label {label!r} is not a class of the task: use one of "
                    f"{sorted(known)}"
                )
            if thumbs is not None and (thumbs == "up") != (label == preds[rid]):
                raise ValueError(
                    f"{where}: thumbs = {thumbs!r} contradicts label {label!r} (the model said "
                    f"{preds[rid]!r}): fix one of them"
                )
            labels.append((rid, label))
        elif thumbs == "up":
            labels.append((rid, preds[rid]))
        else:
            down.append(rid)
    return labels, down


def log_feedback_file(loop: Loop, path) -> dict:
    """`loopwright log-feedback`: check every row, then write the labels (source
    `feedback`) and queue the thumbs-down rows (reason `feedback`, first in Label Studio's
    queue once `curate` imports them: `curation.labeling.queue_scores`). All or nothing."""
    import pyarrow as pa

    from flows.loop.curate import select_samples
    from storage.log_views import PICKS_SCHEMA

    rows = read_feedback(path)
    ids = [r.get("request_id") for r in rows if isinstance(r.get("request_id"), str)]
    logged = loop.queries.prediction_frame(ids, columns=["request_id", "pred"]).to_pylist()
    preds = {r["request_id"]: r["pred"] for r in logged}
    labels, down = check_feedback(rows, loop.task.classes, preds)
    labeled = set(loop.queries.labeled_examples().column("request_id").to_pylist())
    queued = loop.queries.queued_ids()
    todo = [r for r in down if r not in labeled and r not in queued]
    picks = pa.table(
        {"request_id": todo, "reason": ["feedback"] * len(todo), "score": [None] * len(todo)},
        schema=PICKS_SCHEMA,
    )
    if todo:  # checks each can be shown to a labeler before anything is written
        from flows.loop.curate import shown_to_labeler

        frame = loop.queries.prediction_frame(todo, columns=["request_id", "input", "input_uri"])
        for row in frame.to_pylist():
            shown_to_labeler(loop.task, row)
    written = log_feedback(loop, labels)
    if todo:
        select_samples(loop, len(todo), 0, picks)
    return {
        "rows": len(rows),
        "labels": written,
        "thumbs_down_queued": len(todo),
        "thumbs_down_skipped": len(down) - len(todo),  # already labeled or queued
    }
