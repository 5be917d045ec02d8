"""`status`: who serves, what the last checks said, what waits for people."""

from __future__ import annotations

from flows.runtime import Runtime
from storage.state import read_state


def collect(rt: Runtime, history: int = 20) -> dict:
    """A plain dict (the `status --json` output); reads only, never writes."""
    reg = rt.registry
    aliases = reg.aliases()
    drift = read_state(rt.home, "last_drift") or {}
    gate = read_state(rt.home, "last_gate")
    trigger = read_state(rt.home, "last_trigger")
    demo = read_state(rt.home, "demo")
    return {
        "home": str(rt.home.root),
        "task": rt.task.name,
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
        "pending_labels": rt.queries.pending_labels(),
        "labels": rt.queries.label_counts(),
        "predictions": rt.queries.count_predictions(),
        "demo": demo,
    }
