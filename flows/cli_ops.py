"""`loopwright promote`, `rollback`, `status` and `serve`: operating a running loop."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.table import Table

from flows.cli_common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    config_or_fail,
    console,
    fail,
    prefect_api,
    run_flow,
)


def rollback(
    reason: Annotated[str, typer.Option(help="recorded in the alias history")] = "manual rollback",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the previous champion champion again, in one atomic step."""
    from flows.rollback import rollback_flow

    run_flow(rollback_flow, config, home, as_json, reason=reason)


def promote(
    version: Annotated[str, typer.Argument(help="registry version, e.g. v0001")],
    reason: Annotated[str, typer.Option(help="why it should serve (kept in the alias history)")],
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a registered version champion by your own decision, recorded in the history.

    For a first model the gate could not judge (too few eval rows); `rollback` undoes it.
    """
    from flows.promote import promote_flow

    result = run_flow(promote_flow, config, home, as_json, version=version, reason=reason)
    if not as_json:
        console.print(f"champion {result['from']} -> {result['to']}: {result['reason']}")


def status(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Who is champion, the last drift verdict, pending labels, the last trigger and gate."""
    from flows.loop.open import open_loop
    from flows.status import collect

    cfg = config_or_fail(config)
    try:
        root = home or cfg.home.path
        if not os.path.isdir(root):
            raise ValueError(
                f"data home {root!r} does not exist: run `loopwright demo` or pass --home"
            )
        info = collect(open_loop(config, home))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    console.print(status_table(info))


def _verdict(gate: dict) -> str:
    if gate.get("promote"):
        return "PROMOTE"
    return "KEEP champion" if gate.get("champion_before") else "NOT PROMOTED (no champion yet)"


def status_table(info: dict) -> Table:
    """The `status` dict as the table a person reads; a step that never ran says so."""
    t = Table(title=f"loopwright status · {info['home']}", show_header=False)
    if info.get("logs") and info["logs"] != info["home"]:
        t.add_row("logs", info["logs"])
    t.add_row("champion", str(info["champion"] or "none yet"))
    t.add_row("challenger", str(info["challenger"] or "none yet"))
    if info.get("next"):
        t.add_row("next step", info["next"])
    drift = info["last_drift"]
    t.add_row(
        "last drift check",
        f"{drift.get('status')} (share {drift.get('drift_share')}) at {drift.get('ts')}"
        if drift
        else "none yet",
    )
    from flows.status import estimate_line

    t.add_row("estimated accuracy", estimate_line(drift))
    if drift and drift.get("cohorts"):
        from flows.loop.drift_outcome import cohort_line

        for name, c in drift["cohorts"].items():
            t.add_row(f"cohort {name}", cohort_line(name, c).split(": ", 1)[1])
    trig = info["last_trigger"]
    t.add_row(
        "last trigger",
        f"{'fired' if trig.get('fire') else 'quiet'} {trig.get('kind', '')}: "
        + "; ".join(trig.get("reasons", []))
        if trig
        else "none yet",
    )
    gate = info["last_gate"]
    t.add_row(
        "last gate",
        f"{_verdict(gate)}: " + "; ".join(gate.get("reasons", []))
        if gate
        else "no gate has run yet",
    )
    if "rollout" in info:
        from flows.status import rollout_line

        t.add_row("rollout", rollout_line(info["rollout"]))
    if info.get("label_shift"):
        from flows.status import label_shift_line

        t.add_row("label shift", label_shift_line(info["label_shift"]))
    t.add_row("pending labels", str(info["pending_labels"]))
    t.add_row("labels", json.dumps(info["labels"]))
    t.add_row("predictions", str(info["predictions"]))
    return t


def serve(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Serve the scheduled deployments (drift-check, curate, sync-labels, retrain…) until stopped.

    Also retrain-periodic, and compact when installed; stop it with SIGTERM (or Ctrl-C).
    """
    from flows.serve import serve_all

    cfg = config_or_fail(config)
    with prefect_api(cfg.prefect.port) as url:
        if url is None:
            fail(
                RuntimeError(
                    "serve needs a Prefect server: run `make prefect-up` or set PREFECT_API_URL"
                )
            )
        serve_all(cfg, config, home)
