"""`promote`: make a registered version champion by an explicit, recorded decision.

Why it exists: the gate promotes on evidence, and a first model trained on a small seed
has too few held-out rows for the gate to judge (`[gate] min_eval_rows`). Its owner may
still trust it; promoting it is then a person's decision, and like every alias move it is
one compare-and-swap on the registry with its reason and actor in the alias history, so
an audit shows who put it in service and why. `rollback` undoes it like any other move.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

from prefect import flow

from flows.loop.open import open_loop
from storage.state import append_event


def _actor() -> str:
    try:
        return f"promote by {getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "promote"


@flow(name="promote", log_prints=True)
def promote_flow(
    version: str, reason: str, config_path: str | None = None, home: str | None = None
) -> dict:
    """Point `champion` at `version` (checked: this task, intact weights, not champion yet)."""
    loop = open_loop(config_path, home)
    before = loop.registry.aliases().get("champion")
    event = loop.registry.promote(
        version, reason=reason, actor=_actor(), task=loop.task.name, classes=loop.task.classes
    )
    out = {
        "from": before,
        "to": version,
        "reason": reason,
        "actor": event["actor"],
        "seq": event["seq"],
        "ts": datetime.now(UTC).isoformat(),
    }
    append_event(loop.home, "promotions", out)
    print(f"champion {before} -> {version}: {reason}")
    return out
