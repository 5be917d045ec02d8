"""The demo's closing summary, as a person reads it in the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def rollout_text(rnd) -> str:
    if rnd.rollout_decision is None:
        return ""
    if rnd.rollout_decision == "started":
        return f" │ rollout: canary at {rnd.canary_weight:.0%}"
    if rnd.promoted and rnd.rollout_decision == "advance":
        return " │ rollout: canary PROMOTED (100 %)"
    return f" │ rollout {rnd.rollout_decision} → canary at {rnd.canary_weight:.0%}"


def canary_predictions(steps: list[dict]) -> int:
    """Predictions the canary served over a rollout's analyses. Each analysis counts the
    canary's rows since its step started, so the holds of one step count the same rows again:
    only the last analysis of each step (a run of equal weights) is summed.

    >>> canary_predictions([{"weight": 0.25, "exposure": 40}, {"weight": 0.25, "exposure": 90},
    ...                     {"weight": 0.5, "exposure": 100}])
    190
    """
    total = 0
    for i, s in enumerate(steps):
        if i + 1 == len(steps) or steps[i + 1]["weight"] != s["weight"]:
            total += int(s.get("exposure") or 0)
    return total


def rollout_summary(home, served: int) -> list[dict]:
    """Each rollout's steps, decisions and exposure (canary predictions / all served)."""
    from flows.loop.rollout import status

    out = []
    for r in status(home)["history"]:
        exposed = canary_predictions(r["steps"])
        out.append(
            {
                "candidate": r["candidate"],
                "outcome": r["outcome"],
                "steps": [{"weight": s["weight"], "decision": s["decision"]} for s in r["steps"]],
                "canary_predictions": exposed,
                "exposure": exposed / served if served else None,
            }
        )
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def print_summary(console: Console, s: dict) -> None:
    t = Table(
        title=f"loopwright demo · scenario {s['scenario']} · {s['batches']} batches",
        show_header=False,
    )
    t.add_row("champion before → after", f"{s['champion_before']} → {s['champion_after']}")
    t.add_row("accuracy before drift", _pct(s["accuracy_before_drift"]))
    t.add_row("accuracy under drift (first champion)", _pct(s["accuracy_under_drift"]))
    t.add_row("accuracy after retraining (final champion)", _pct(s["accuracy_after_retraining"]))
    t.add_row("measured on", s["accuracy_measured_on"])
    t.add_row("labels spent", str(s["labels_spent"]))
    for e in s["retrains"]:
        t.add_row(
            f"retrain after batch {e['after_batch']}",
            f"{e['challenger']} ({e['trigger']}): "
            + (
                "rolled out as canary"
                if e.get("rollout")
                else ("promoted" if e["promoted"] else "kept champion")
            ),
        )
    for r in s.get("rollouts", []):
        steps = " → ".join(f"{x['weight']:.0%} {x['decision']}" for x in r["steps"]) or "no step"
        exposure = "n/a" if r["exposure"] is None else f"{100 * r['exposure']:.1f}%"
        t.add_row(
            f"rollout of {r['candidate']}",
            f"{r['outcome']}: {steps} (exposure {exposure} of predictions)",
        )
    t.add_row("last gate", ("PROMOTE" if s["gate"]["promote"] else "KEEP CHAMPION"))
    for r in s["gate"]["reasons"]:
        t.add_row("", r)
    t.add_row("report card", str(s["report_card"]))
    t.add_row(
        "wall time",
        f"{s['seconds']} s  ("
        + ", ".join(f"{k} {v}s" for k, v in s["stage_seconds"].items())
        + ")",
    )
    console.print(t)
