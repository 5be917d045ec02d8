"""What to do next, in words: the sentences a stage says when the loop cannot go on yet.

Why apart: `score`, `retrain` and `status` name the same way to a first champion, from
wherever the data home is now, so the sentence exists once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from storage.state import read_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

#: share of labeled rows `storage.datasets.create_dataset` holds out (its default)
TEST_SHARE = 0.2

NO_LABELS = (
    "no labeled examples to train on: add some with `loopwright seed --input FILE.parquet` "
    "(columns request_id, input, label[, attrs]), or label curated samples (`loopwright "
    "curate`, then Label Studio, then `loopwright sync-labels`)"
)

NO_CHAMPION = (
    "no champion yet: train one (`loopwright retrain`), or, to watch a model served "
    'elsewhere, set [drift] reference = "window" (README: "Watching a model you serve '
    'elsewhere")'
)


def no_champion_hint(loop: Loop) -> str:
    """What to do when nothing serves yet: the path to a first champion, from where the home
    is now (no labels; labels but no model; a model the gate did not promote)."""
    if getattr(loop.task, "monitor_only", False):
        return (
            "the task is monitor-only ([task] classes, a model served elsewhere): log its "
            "predictions with `loopwright log-predictions`, compare windows of the log with "
            '`[drift] reference = "window"`; to train a model here, set [task] plugin'
        )
    challenger = loop.registry.get("challenger")
    if challenger is not None:
        gate = read_state(loop.home, "last_gate") or {}
        if gate.get("challenger") == challenger and gate.get("next"):
            return gate["next"]
        return (
            f"{challenger} was trained but not promoted (see `loopwright status`): promote it "
            f'with `loopwright promote {challenger} --reason "..."`, or add labeled rows '
            "(`loopwright seed --input FILE.parquet`) and run `loopwright retrain`"
        )
    if loop.queries.label_counts():
        return "labeled examples are waiting: train the first model with `loopwright retrain`"
    return (
        "give loopwright labeled examples (`loopwright seed --input FILE.parquet` with columns "
        "request_id, input, label), train the first model (`loopwright retrain`), and promote "
        'it if the gate cannot judge it yet (`loopwright promote VERSION --reason "..."`)'
    )


def bootstrap_hint(version: str, card: dict, min_eval_rows: int) -> str:
    """The way on when the first model was not promoted: why, and the two ways forward
    (promote it by hand, recorded with its reason; or more labeled rows and retrain)."""
    failed = [c for c in card["gate"]["checks"] if not c["passed"]]
    n = int(card["eval_set"]["n"])
    if any(c["name"] == "eval_rows" for c in failed):
        total = int(np.ceil(min_eval_rows / TEST_SHARE))
        why = (
            f"its eval set has {n} held-out rows, fewer than [gate] min_eval_rows = "
            f"{min_eval_rows}, so the gate cannot judge it"
        )
        more = (
            f"or add labeled rows (about {total} in all hold out {min_eval_rows}) with "
            "`loopwright seed --input FILE.parquet` and run `loopwright retrain` again"
        )
    else:
        why = "the gate refused it: " + "; ".join(c["detail"] for c in failed)
        more = "or fix what the gate names and run `loopwright retrain` again"
    return (
        f"{version} is registered as challenger, and there is no champion yet: {why}. "
        f'If you trust it, promote it: `loopwright promote {version} --reason "..."` '
        f"(recorded in the alias history), {more}."
    )
