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
