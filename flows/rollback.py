"""`rollback`: put the previous champion back, in one atomic step on the registry file."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from flows.loop.open import open_loop
from storage.state import append_event


@flow(name="rollback", log_prints=True)
def rollback_flow(
    reason: str = "manual rollback", config_path: str | None = None, home: str | None = None
) -> dict:
    """Make the champion before the last move champion again; the move is kept in the history."""
    loop = open_loop(config_path, home)
    before = loop.registry.aliases().get("champion")  # may name a missing version: that is
    # exactly when a rollback is needed, so it is not loaded or checked here
    after = loop.registry.rollback(reason=reason, actor="rollback")
    event = {"from": before, "to": after, "reason": reason, "ts": datetime.now(UTC).isoformat()}
    append_event(loop.home, "rollbacks", event)
    print(f"rolled back champion {before} -> {after}: {reason}")
    return event
