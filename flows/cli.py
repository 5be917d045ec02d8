"""The `loopwright` command: every flow is a command, calling the same function as its deployment.

Flows talk to a Prefect server: `PREFECT_API_URL` when set, else the local server that
`scripts/prefect_server.sh` started on `[prefect] port` when it answers, else Prefect's
ephemeral mode (slower to start, nothing kept for the UI).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="loopwright.toml to read (default ./loopwright.toml, else built-in defaults)",
    ),
]
HomeOpt = Annotated[
    str | None, typer.Option("--home", help="data home (default [home] path, .loopwright)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 (local URL)
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def prefect_api(port: int, url: str | None = None):
    """Point Prefect at a server for the duration of a command."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if url is None and os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    url = url or f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    else:
        yield None  # ephemeral mode


def quiet_prefect_console() -> None:
    """Keep Prefect's per-run log lines out of the terminal (they still reach the UI)."""
    import logging

    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def _fail(exc: BaseException) -> None:
    """Print the error (it names the field and the fix) unwrapped and unstyled, exit 1."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(1)


def _config(config: str | None):
    from flows.config import ConfigError, load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        _fail(exc)


def _run(fn, config: str | None, home: str | None, as_json: bool, **kwargs) -> dict:
    from flows.runtime import open_runtime

    cfg = _config(config)
    try:
        open_runtime(config, home)  # an unusable data home fails here, before any flow run
    except (ValueError, OSError) as exc:
        _fail(exc)
    try:
        with prefect_api(cfg.prefect.port):
            result = fn(config_path=config, home=home, **kwargs)
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(result, default=str))
    return result


@app.command("score-batch")
def score_batch(
    input: Annotated[
        str, typer.Option("--input", help="Parquet file: request_id, input[, attrs, ts]")
    ],
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a file of production inputs with the champion and log every prediction."""
    from flows.score_batch import score_batch_flow

    _run(score_batch_flow, config, home, as_json, input_path=input)


@app.command("log-predictions")
def log_predictions(
    input: Annotated[
        str,
        typer.Option(
            "--input",
            help="Parquet file: request_id, model_version, features, probs[, ts, role, pred, "
            "confidence, margin, entropy, input, input_uri, attrs]",
        ),
    ],
    chunk_rows: Annotated[
        int, typer.Option(help="rows validated and written at a time (bounds memory)")
    ] = 50_000,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Log predictions a model served elsewhere made (validated; all or nothing)."""
    from pathlib import Path

    from flows.runtime import open_runtime
    from flows.score_batch import log_file

    _config(config)
    try:
        result = log_file(open_runtime(config, home), Path(input), chunk_rows)
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(result))
    else:
        console.print(
            f"logged {result['rows']} predictions from {input} ({result['chunks']} chunks)"
        )


@app.command("drift-check")
def drift_check(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Compare recent traffic with the champion's reference window (Evidently report + verdict)."""
    from flows.drift_check import drift_check_flow

    _run(drift_check_flow, config, home, as_json)


@app.command()
def curate(
    budget: Annotated[
        int | None, typer.Option(help="labels to ask for (default [curation] budget_per_batch)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the random audit draw")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pick uncertain samples plus a random audit share and send them to Label Studio."""
    from flows.curate import curate_flow

    _run(curate_flow, config, home, as_json, budget=budget, seed=seed)


@app.command("sync-labels")
def sync_labels(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Pull finished Label Studio annotations into the label log (idempotent)."""
    from flows.sync_labels import sync_labels_flow

    _run(sync_labels_flow, config, home, as_json)


@app.command()
def retrain(
    force: Annotated[bool, typer.Option(help="retrain even if no trigger fires")] = False,
    reason: Annotated[str, typer.Option(help="why, when forced")] = "",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check triggers; if one fires: dataset version, fit, report card, gate, promote or keep."""
    from flows.retrain import retrain_flow

    _run(retrain_flow, config, home, as_json, force=force, reason=reason)


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="recorded in the alias history")] = "manual rollback",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the previous champion champion again, in one atomic step."""
    from flows.rollback import rollback_flow

    _run(rollback_flow, config, home, as_json, reason=reason)


@app.command()
def status(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Who is champion, the last drift verdict, pending labels, the last trigger and gate."""
    from flows.runtime import open_runtime
    from flows.status import collect

    cfg = _config(config)
    try:
        root = home or cfg.home.path
        if not os.path.isdir(root):
            raise ValueError(
                f"data home {root!r} does not exist: run `loopwright demo` or pass --home"
            )
        info = collect(open_runtime(config, home))
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
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
    console.print(t)


@app.command()
def serve(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Serve the scheduled deployments (drift-check, curate, sync-labels, retrain) until stopped."""
    from flows.serve import serve_all

    cfg = _config(config)
    with prefect_api(cfg.prefect.port) as url:
        if url is None:
            _fail(
                RuntimeError(
                    "serve needs a Prefect server: run `make prefect-up` or set PREFECT_API_URL"
                )
            )
        serve_all(cfg, config, home)


@app.command()
def demo(
    scenario: Annotated[
        str | None, typer.Option(help="scenario TOML (default [demo] scenario)")
    ] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="leave Label Studio and Prefect up to browse")
    ] = False,
    json_out: Annotated[
        str | None, typer.Option("--json-out", help="also write the summary to this file")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="show Prefect's own log lines too")
    ] = False,
) -> None:
    """Run the whole loop on the built-in digits task, with real Label Studio and Prefect servers."""
    from pathlib import Path

    from flows import services
    from flows.demo import demo_flow, prepare_home, resolve_scenario
    from flows.summary import print_summary
    from retrain.digits.scenario import load_scenario

    cfg = _config(config)
    root = Path(home or cfg.home.path)
    try:
        # a bad scenario fails here, before a previous demo's home or any server is touched
        load_scenario(resolve_scenario(scenario or cfg.demo.scenario))
        note = prepare_home(root)
    except ValueError as exc:
        _fail(exc)
    if note:
        console.print(f"[dim]{note}[/]")
    console.rule("[bold]loopwright demo")
    console.print("starting Label Studio and a Prefect server on 127.0.0.1 …")
    try:
        svc, token = services.start(cfg.labelstudio.url, cfg.prefect.port)
    except RuntimeError as exc:
        _fail(exc)
    os.environ["LOOPWRIGHT_LABELSTUDIO_TOKEN"] = token
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if not verbose:
        quiet_prefect_console()
    try:
        with prefect_api(cfg.prefect.port, url=svc.prefect_api_url):
            summary = demo_flow(
                scenario_path=scenario or cfg.demo.scenario,
                run_id=run_id,
                config_path=config,
                home=str(root),
                progress=True,
            )
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10)  # send the last flow logs before the server stops
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(exc)
    finally:
        if not keep_running:
            services.stop(svc)
    print_summary(console, summary)
    if json_out:
        Path(json_out).write_text(json.dumps(summary, indent=2, default=str))
    if keep_running:
        console.print(
            f"Label Studio: {cfg.labelstudio.url}  ·  Prefect UI: {svc.prefect_api_url.removesuffix('/api')}"
        )
        console.print("stop them with `make labelstudio-down prefect-down`")
    console.print(f"inspect this run: [bold].venv/bin/loopwright status --json --home {root}[/]")


def _add_bench() -> None:
    """`loopwright bench …`: the scenario benchmark lives in flows/bench_cli.py."""
    try:
        from flows.bench_cli import bench_app
    except ImportError:  # the benchmark is optional at runtime
        return
    app.add_typer(bench_app, name="bench", help="Measure the loop against baselines.")


_add_bench()

if __name__ == "__main__":
    app()
