"""What a labeling task and an annotation look like, without the SDK.

The Label Studio side of the contract: tasks carry `image` (what the labeler is shown: a
data URI for an Image view, or HTML for a HyperText view), `request_id` and `reason` in
their data, plus any `extra` fields the view uses (e.g. `scores`, the logged class
probabilities), and the model's prediction as a pre-annotation; the labeling config has an
object named `image` and single-choice Choices named `label`. Pure functions, so they are
tested without a server; `curation.labelstudio` does the talking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

FROM_NAME, TO_NAME = "label", "image"  # the labeling config's Choices name and Image name
ANNOTATOR_DOMAIN = "loopwright.local"  # e-mail domain of users made for named annotators


@dataclass(frozen=True)
class LSTask:
    request_id: str
    image: str  # data URI the labeler's browser shows
    pred_label: str | None  # model prediction, shown as a pre-annotation
    score: float | None
    model_version: str | None
    reason: str  # why it was picked ("uncertainty", "audit", ...)
    extra: Mapping[str, str] = field(default_factory=dict)  # more task data for the view


@dataclass(frozen=True)
class LSAnnotation:
    request_id: str
    ls_task_id: int
    ls_annotation_id: int
    label: str | None  # None when cancelled (skipped) or empty
    annotator: str  # the Label Studio user's e-mail
    ts: datetime  # when the annotation was last saved (UTC)
    was_cancelled: bool


class LabelStudioError(RuntimeError):
    """Label Studio unreachable, token refused, or a request rejected; the message says the fix.

    `status` is the HTTP status when the server answered, None when it could not be reached.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def labeling_config(classes: Sequence[str]) -> str:
    """The labeling config this adapter expects: an Image `image` and single Choices `label`."""
    choices = "".join(f"<Choice value={quoteattr(str(c))}/>" for c in classes)
    return (
        f'<View><Image name="{TO_NAME}" value="$image"/>'
        f'<Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true">'
        f"{choices}</Choices></View>"
    )


def choice_result(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def label_of(result: Sequence[dict[str, Any]] | None) -> str | None:
    """The chosen class in an annotation's result, or None when there is none."""
    for item in result or ():
        if item.get("from_name") == FROM_NAME and item.get("type") == "choices":
            choices = (item.get("value") or {}).get("choices") or []
            if choices:
                return str(choices[0])
    return None


def scores_text(probs: Sequence[float] | None, classes: Sequence[str], top: int = 5) -> str:
    """The logged class probabilities as one line for the labeler, most likely first.

    >>> scores_text([0.1, 0.7, 0.2], ["a", "b", "c"])
    'model: b 0.70 · c 0.20 · a 0.10'
    """
    if probs is None or len(probs) != len(classes):
        return "model: no scores logged"
    order = sorted(range(len(classes)), key=lambda i: -float(probs[i]))[:top]
    return "model: " + " · ".join(f"{classes[i]} {float(probs[i]):.2f}" for i in order)


# Label Studio's queue order ("Uncertainty sampling": `/next` serves the lowest prediction
# score first, among predictions of the project's `model_version`). Bands, lowest first:
SAMPLING = "Uncertainty sampling"
FEEDBACK_FIRST = -2.0  # a user's thumbs-down without a label: a known failure, first of all
# `like:<id>` (a person asked for the neighbours of a known failure): [-1, 0], closest first;
# uncertainty picks: (0, 1], most uncertain first; audit picks: a uniform draw inside the
# uncertainty picks' range, seeded by the request id, so they are neither first nor last


def _unit_hash(request_id: str) -> float:
    """A stable uniform number in [0, 1) from the request id (not Python's salted hash)."""
    import hashlib

    digest = hashlib.blake2b(f"queue:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _ranked(reason: str) -> bool:
    return reason == "uncertainty" or str(reason).startswith("cohort:")


def queue_scores(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """The pre-annotation `score` of each queued row (`request_id`, `reason`, curation
    `score`) for Label Studio's uncertainty sampling, which serves the lowest first.

    An uncertainty pick's curation score is "higher = more uncertain" (any strategy, entropy
    too), so it maps to 1 / (1 + score); a `like:` pick's score is a cosine similarity;
    `feedback` (thumbs-down) goes first.

    >>> queue_scores([{"request_id": "u1", "reason": "uncertainty", "score": 1.0},
    ...               {"request_id": "u2", "reason": "uncertainty", "score": 0.25},
    ...               {"request_id": "f", "reason": "feedback", "score": None},
    ...               {"request_id": "l", "reason": "like:r9", "score": 1.0}])
    [0.5, 0.8, -2.0, -1.0]
    """
    unc = [1.0 / (1.0 + max(float(r["score"]), 0.0)) for r in rows
           if _ranked(r["reason"]) and r.get("score") is not None]  # fmt: skip
    lo, hi = (min(unc), max(unc)) if len(unc) > 1 and max(unc) > min(unc) else (0.0, 1.0)
    out = []
    for r in rows:
        reason, score = str(r["reason"]), r.get("score")
        if reason == "feedback":
            out.append(FEEDBACK_FIRST)
        elif reason.startswith("like:"):
            sim = 0.0 if score is None else min(max(float(score), -1.0), 1.0)
            out.append(-(1.0 + sim) / 2.0)
        elif _ranked(reason) and score is not None:  # a cohort's pick: an uncertainty score
            out.append(1.0 / (1.0 + max(float(score), 0.0)))
        else:  # audit (and anything unranked): a seeded uniform place in the range
            out.append(lo + (hi - lo) * _unit_hash(str(r["request_id"])))
    return out


def queue_version(tasks: Sequence[LSTask]) -> str | None:
    """The project's `model_version` for uncertainty sampling: that of the newest task that
    has one (tasks come oldest queued first, so: the champion that made the latest picks).

    >>> queue_version([LSTask("a", "x", "1", 0.2, "v1", "audit"),
    ...                LSTask("b", "x", "1", 0.3, "v2", "audit")])
    'v2'
    """
    versions = [t.model_version for t in tasks if t.model_version and t.pred_label is not None]
    return versions[-1] if versions else None


def annotator_email(name: str) -> str:
    """The e-mail a named annotator is recorded under (what an export's `annotator` holds).

    >>> annotator_email("alice"), annotator_email("bob@example.org")
    ('alice@loopwright.local', 'bob@example.org')
    """
    return name if "@" in name else f"{name}@{ANNOTATOR_DOMAIN}"


def parse_ts(value: str | None) -> datetime:
    if not value:
        raise LabelStudioError(
            "an exported annotation has no created_at: is the server a Label Studio >= 1.20?"
        )
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def task_payload(task: LSTask) -> dict[str, Any]:
    """The import payload of one task: its data and, if any, the prediction as pre-annotation."""
    data = {str(k): str(v) for k, v in task.extra.items()}
    data.update(image=task.image, request_id=task.request_id, reason=task.reason)
    payload: dict[str, Any] = {"data": data}
    if task.pred_label is not None:
        prediction: dict[str, Any] = {"result": choice_result(str(task.pred_label))}
        if task.model_version is not None:
            prediction["model_version"] = task.model_version
        if task.score is not None:
            prediction["score"] = float(task.score)
        payload["predictions"] = [prediction]
    return payload


def parse_export(
    tasks: Sequence[Mapping[str, Any]], emails: Mapping[int, str]
) -> list[LSAnnotation]:
    """Annotations from a JSON export (one per annotation, sorted by id).

    Tasks without a request_id (added by hand) are ignored; cancelled annotations are kept
    with label None so that callers can count them. `ts` is when the annotation was last
    saved, so a corrected label is newer than the first one.
    """
    out = []
    for task in tasks:
        rid = (task.get("data") or {}).get("request_id")
        if rid is None:
            continue
        for ann in task.get("annotations") or ():
            who = ann.get("completed_by")
            if isinstance(who, dict):
                annotator = str(who.get("email") or who.get("id"))
            else:
                annotator = emails.get(who, str(who))
            cancelled = bool(ann.get("was_cancelled"))
            out.append(
                LSAnnotation(
                    request_id=str(rid),
                    ls_task_id=int(task["id"]),
                    ls_annotation_id=int(ann["id"]),
                    label=None if cancelled else label_of(ann.get("result")),
                    annotator=annotator,
                    ts=parse_ts(ann.get("updated_at") or ann.get("created_at")),
                    was_cancelled=cancelled,
                )
            )
    return sorted(out, key=lambda a: a.ls_annotation_id)


def check_tasks(tasks: Sequence[LSTask]) -> None:
    """What every labeler refuses before importing: a request id twice, a task with nothing
    to show (the server adapter and the in-memory one apply the same checks)."""
    ids = [t.request_id for t in tasks]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"tasks hold request_id {dup!r} more than once: pass each prediction once")
    for t in tasks:
        if not t.image or not isinstance(t.image, str):
            raise ValueError(
                f"task {t.request_id!r} has no image: render the input with task.render"
            )
