"""The rollout's clock: the traffic's time, not this process's.

Why: in a replay (the benchmark) predictions carry logical timestamps, so a rollout step's
window (`step_started <= ts < now`) must be read on that clock, or it would hold no rows;
behind a server (the demo, production) the server stamps predictions with the wall clock,
and the flows that open their own loop have scored nothing, so they get None: wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def traffic_now(loop: Any) -> datetime | None:
    """Just after the newest prediction this loop scored (`score_table` records it as
    `loop.traffic_time`); None: use the wall clock."""
    newest = getattr(loop, "traffic_time", None)
    return None if newest is None else newest + timedelta(microseconds=1)
