"""The demo's closing summary, as a person reads it in the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


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
            f"{e['challenger']} ({e['trigger']}): {'promoted' if e['promoted'] else 'kept champion'}",
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
