"""`loopwright deploy`, `loopwright worker`, `loopwright webhook-receiver`: the loop on a
Prefect server with work pools and events (docs/scale-out.md)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import ConfigOpt, HomeOpt, JsonOpt, config_or_fail, console, fail

PoolOpt = Annotated[str, typer.Option("--pool", help="Prefect work pool (process pools are made)")]


def _api_url_or_fail() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        fail(
            RuntimeError(
                "PREFECT_API_URL is not set: point it at the Prefect server the workers use, "
                "e.g. PREFECT_API_URL=http://127.0.0.1:4200/api"
            )
        )
    return url


def deploy(
    pool: PoolOpt = "loopwright",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register the loop's deployments and automations on a work pool (PREFECT_API_URL).

    Idempotent: deploying again updates them, and leaves one automation of each kind."""
    import json

    from flows.deploy import deploy as deploy_all

    cfg = config_or_fail(config)
    url = _api_url_or_fail()
    try:
        done = deploy_all(cfg, config, home, pool)
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps([d.__dict__ for d in done], indent=2))
        return
    console.print(f"deployed {len(done)} deployments on pool [bold]{pool}[/] at {url}")
    for d in done:
        extra = f"  (automation: {', '.join(d.automations)})" if d.automations else ""
        console.print(f"  {d.name}{extra}", soft_wrap=True)
    console.print(f"start a worker: loopwright worker --pool {pool}")


def worker(
    pool: PoolOpt = "loopwright",
    name: Annotated[str | None, typer.Option(help="worker name (default: Prefect's)")] = None,
    limit: Annotated[
        int | None, typer.Option(help="flow runs this worker runs at once (default: no limit)")
    ] = None,
    poll_seconds: Annotated[
        float | None,
        typer.Option(help="how often to ask for runs (PREFECT_WORKER_QUERY_SECONDS, default 10)"),
    ] = None,
) -> None:
    """Run flow runs of a work pool in processes on this machine (`prefect worker start`).

    Stop it with SIGINT (Ctrl-C) before the server: it ignores SIGTERM while retrying a server
    that is gone."""
    _api_url_or_fail()
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    args = [prefect, "worker", "start", "--pool", pool, "--type", "process"]
    if name:
        args += ["--name", name]
    if limit is not None:
        args += ["--limit", str(limit)]
    if poll_seconds is not None:
        os.environ["PREFECT_WORKER_QUERY_SECONDS"] = str(poll_seconds)
    os.execvp(prefect, args)


def webhook_receiver(
    port: Annotated[int, typer.Option(help="port to listen on")] = 8340,
    host: Annotated[
        str, typer.Option(help="address to bind (default 127.0.0.1 only)")
    ] = "127.0.0.1",
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Turn Label Studio webhooks (annotation created/updated) into Prefect events that run
    sync-labels (set LOOPWRIGHT_WEBHOOK_TOKEN to require a bearer token)."""
    from flows.events import home_key
    from flows.webhook import PATH, serve

    cfg = config_or_fail(config)
    _api_url_or_fail()
    key = home_key(home or cfg.home.path)
    console.print(f"webhook receiver for {key} on http://{host}:{port}{PATH}", soft_wrap=True)
    serve(key, host, port)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("worker")(worker)
    app.command("webhook-receiver")(webhook_receiver)
