"""`status`: who serves, what the last checks said, what waits for people."""

from __future__ import annotations

from flows.runtime import Runtime
from storage.state import read_state


def no_champion_hint(rt: Runtime) -> str:
    """What to do when nothing serves yet: the path to a first champion, from where the home
    is now (no labels; labels but no model; a model the gate did not promote)."""
    if getattr(rt.task, "monitor_only", False):
        return (
            "the task is monitor-only ([task] classes, a model served elsewhere): log its "
            "predictions with `loopwright log-predictions`, compare windows of the log with "
            '`[drift] reference = "window"`; to train a model here, set [task] plugin'
        )
    challenger = rt.registry.get("challenger")
    if challenger is not None:
        gate = read_state(rt.home, "last_gate") or {}
        if gate.get("challenger") == challenger and gate.get("next"):
            return gate["next"]
        return (
            f"{challenger} was trained but not promoted (see `loopwright status`): promote it "
            f'with `loopwright promote {challenger} --reason "..."`, or add labeled rows '
            "(`loopwright seed --input FILE.parquet`) and run `loopwright retrain`"
        )
    if rt.queries.label_counts():
        return "labeled examples are waiting: train the first model with `loopwright retrain`"
    return (
        "give loopwright labeled examples (`loopwright seed --input FILE.parquet` with columns "
        "request_id, input, label), train the first model (`loopwright retrain`), and promote "
        'it if the gate cannot judge it yet (`loopwright promote VERSION --reason "..."`)'
    )


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
        "next": None if aliases.get("champion") else no_champion_hint(rt),
    }
