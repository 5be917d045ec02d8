"""`status`: who serves, what the last checks said, what waits for people."""

from __future__ import annotations

from flows.loop.engine import Loop
from flows.loop.estimate import estimate_line
from flows.loop.hints import no_champion_hint
from flows.loop.rollout import status as rollout_status
from storage.routing import read_routing
from storage.state import read_state

__all__ = ["collect", "estimate_line", "no_champion_hint"]


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
        "logs": loop.home.logs_url or str(loop.home.root),  # where the four logs live
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
                "estimate",
                "cohorts",
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
        "serving": serving(loop),
        "rollout": rollout_status(loop.home),
        "label_shift": label_shift_status(loop),
        "next": None if aliases.get("champion") else no_champion_hint(loop),
    }


def label_shift_status(loop: Loop) -> dict | None:
    """The last label-shift estimate and the correction the champion is served with now."""
    last = read_state(loop.home, "label_shift")
    champion = loop.registry.get("champion")
    served = loop.registry.priors().get(champion) if champion else None
    if last is None and served is None:
        return None
    return {"last": last, "served": served}


def label_shift_line(info: dict | None) -> str:
    """One status line: the correction served, else the last estimate's reason.

    >>> label_shift_line({"last": {"reason": "12 rows < min_rows 400: no estimate"}, "served": None})
    'raw posteriors (12 rows < min_rows 400: no estimate)'
    >>> label_shift_line({"last": None, "served": {"shift": 0.21, "weights": [2.0, 0.5]}})
    'corrected: prior moved 0.21 (weights 2, 0.5)'
    """
    if not info:
        return "off"
    served, last = info.get("served"), info.get("last") or {}
    if served:
        weights = ", ".join(f"{w:g}" for w in served["weights"])
        return f"corrected: prior moved {served.get('shift')} (weights {weights})"
    return f"raw posteriors ({last.get('reason', 'no estimate yet')})"


def serving(loop: Loop) -> dict:
    """Who serves which share of traffic now (the routing the endpoint reads)."""
    routing = read_routing(loop.home)
    settings = getattr(loop.cfg, "serving", None)
    return {
        "champion": routing.champion,
        "canary": routing.canary,
        "weight": routing.canary_weight,
        "shadow": routing.shadow,
        "revision": routing.revision,
        "durability": getattr(settings, "durability", None),
    }


def rollout_line(rollout: dict | None) -> str:
    """The rollout as one line of the `status` table: the active one, else the last one.

    >>> rollout_line({"state": "idle", "current": None, "history": []})
    'none yet'
    """
    if not rollout:
        return "none yet"
    current = rollout.get("current")
    history = rollout.get("history") or []
    if current is None and not history:
        return "none yet"
    r = current or history[-1]
    steps = " → ".join(f"{s['weight']:.0%} {s['decision']}" for s in r.get("steps", []))
    where = f"canary {r['candidate']} at {r['weight']:.0%}" if current else r["candidate"]
    done = sum(1 for h in history if h.get("outcome") == "promoted")
    return (
        f"{r['outcome']}: {where} ({steps or 'no step analyzed yet'}); "
        f"{len(history)} rollouts, {done} promoted"
    )
