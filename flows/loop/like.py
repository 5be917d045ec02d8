"""`curate --like REQUEST_ID`: send people the logged rows nearest to a known failure.

The same path as the `curate` stage after its pick (`flows/loop/curate.py`): the picks are
checked to be showable, written to the queue log (reason `like:<request_id>`, score = the
cosine similarity), and every queued id Label Studio does not hold yet is imported, where
they come right after users' thumbs-down rows (`curation.labeling.queue_scores`). Only the
pick differs: `storage.queries_similar.nearest` instead of uncertainty and audit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from curation.similarity import like_picks
from flows.loop.curate import check_labelstudio, connect, select_samples, send_to_labelstudio
from flows.loop.curate import shown as shown_rule
from storage.queries_similar import nearest
from storage.state import write_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop


def curate_like(loop: Loop, request_id: str, k: int = 10) -> dict:
    """Queue and import the `k` nearest unlabeled, unqueued champion rows to `request_id`."""
    neighbours = nearest(loop.queries, request_id, k, shown_rule(loop.task))  # unknown id: error
    loop.steps("check-labelstudio", check_labelstudio, loop)
    picks = like_picks(neighbours, request_id)
    found = [{"request_id": r, "similarity": round(s, 4)}
             for r, s in zip(picks.column("request_id").to_pylist(),
                             picks.column("score").to_pylist(), strict=True)]  # fmt: skip
    if picks.num_rows == 0:
        return {"like": request_id, "selected": 0, "imported": 0, "neighbours": [],
                "note": "no unlabeled, unqueued row with features to compare"}  # fmt: skip
    project_id = loop.steps("connect-labelstudio", connect, loop)
    picked = loop.steps("select-samples", select_samples, loop, picks.num_rows, 0, picks)
    sent = loop.steps("send-to-labelstudio", send_to_labelstudio, loop, project_id)
    result = {**picked, **sent, "like": request_id, "neighbours": found, "note": ""}
    write_state(loop.home, "last_curate", {**result, "ts": datetime.now(UTC).isoformat()})
    return result
