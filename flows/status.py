"""`status`: who serves, what the last checks said, what waits for people."""

from __future__ import annotations

from flows.loop.engine import Loop
from flows.loop.hints import no_champion_hint
from storage.state import read_state

__all__ = ["collect", "no_champion_hint"]


def collect(loop: Loop, history: int = 20) -> dict:
    """A plain dict (the `status --json` output); reads only, never writes."""
    reg = loop.registry
    aliases = reg.aliases()
    drift = read_state(loop.home, "last_drift") or {}
    gate = read_state(loop.home, "last_gate")
    trigger = read_state(loop.home, "last_trigger")
    demo = read_state(loop.home, "demo")
    return {
        "home": str(loop.home.root),
        "task": loop.task.name,
        "champion": aliases.get("champion"),
        "challenger": aliases.get("challenger"),
        "shadow": aliases.get("shadow"),
        "versions": reg.versions(),
        "history": reg.history()[-history:],
        "last_drift": {
            k: drift.get(k)
            for k in (
                "status",
                "dataset_drift",
                "drift_share",
                "champion",
                "confidence_drop",
                "report_html",
                "ts",
                "reason",
            )
        }
        if drift
        else None,
        "last_trigger": trigger,
        "last_gate": {
            "promote": gate.get("promote"),
            "reasons": gate.get("reasons", []),
            "challenger": gate.get("challenger"),
            "champion_before": gate.get("champion_before"),
            "card_html": gate.get("card_html"),
            "ts": gate.get("ts"),
        }
        if gate
        else None,
        "pending_labels": loop.queries.pending_labels(),
        "labels": loop.queries.label_counts(),
        "predictions": loop.queries.count_predictions(),
        "demo": demo,
        "next": None if aliases.get("champion") else no_champion_hint(loop),
    }
