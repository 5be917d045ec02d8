"""`loopwright rollback`, `status` and `serve`: operating a running loop."""

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


def status(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Who is champion, the last drift verdict, pending labels, the last trigger and gate."""
    from flows.runtime import open_runtime
    from flows.status import collect

    cfg = config_or_fail(config)
    try:
        root = home or cfg.home.path
        if not os.path.isdir(root):
            raise ValueError(
                f"data home {root!r} does not exist: run `loopwright demo` or pass --home"
            )
        info = collect(open_runtime(config, home))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    console.print(status_table(info))


def status_table(info: dict) -> Table:
    """The `status` dict as the table a person reads."""
    t = Table(title=f"loopwright status · {info['home']}", show_header=False)
    t.add_row("champion", str(info["champion"]))
    t.add_row("challenger", str(info["challenger"]))
    drift = info["last_drift"] or {}
    t.add_row(
        "last drift check",
        f"{drift.get('status')} (share {drift.get('drift_share')}) at {drift.get('ts')}",
    )
    trig = info["last_trigger"] or {}
    t.add_row(
        "last trigger",
        f"{'fired' if trig.get('fire') else 'quiet'} {trig.get('kind', '')}: "
        + "; ".join(trig.get("reasons", [])),
    )
    gate = info["last_gate"] or {}
    t.add_row(
        "last gate",
        f"{'PROMOTE' if gate.get('promote') else 'KEEP'}: " + "; ".join(gate.get("reasons", [])),
    )
    t.add_row("pending labels", str(info["pending_labels"]))
    t.add_row("labels", json.dumps(info["labels"]))
    t.add_row("predictions", str(info["predictions"]))
    return t


def serve(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Serve the scheduled deployments (drift-check, curate, sync-labels, retrain) until stopped."""
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
