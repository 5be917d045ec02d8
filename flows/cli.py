"""The `loopwright` command: every flow is a command, calling the same function as its deployment.

Flows talk to a Prefect server: `PREFECT_API_URL` when set, else the local server that
`scripts/prefect_server.sh` started on `[prefect] port` when it answers, else Prefect's
ephemeral mode (slower to start, nothing kept for the UI).

This module holds the app and the loop's own steps (drift-check, curate, sync-labels, retrain,
demo); `cli_predictions.py` takes traffic in, `cli_ops.py` operates a running loop and
`cli_common.py` holds what every command shares.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from flows import cli_compact, cli_curation, cli_deploy, cli_ops, cli_predictions, cli_serving
from flows.cli_common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    config_or_fail,
    console,
    fail,
    prefect_api,
    quiet_prefect_console,
    run_flow,
)
from flows.cli_rollout import rollout_app
from flows.cli_suite import suite_app

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])


def drift_check(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Compare recent traffic with the champion's reference window (Evidently report + verdict)."""
    from flows.drift_check import drift_check_flow

    run_flow(drift_check_flow, config, home, as_json)


def curate(
    budget: Annotated[
        int | None, typer.Option(help="labels to ask for (default [curation] budget_per_batch)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the random audit draw")] = None,
    like: Annotated[
        str | None, typer.Option("--like", help="send the rows nearest to this request id")
    ] = None,
    k: Annotated[int, typer.Option("--k", help="with --like: how many neighbours")] = 10,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pick uncertain samples plus a random audit share and send them to Label Studio."""
    if like is not None:  # similarity curation (flows/cli_curation.py)
        cli_curation.curate_like(like, k, config, home, as_json)
        return
    from flows.curate import curate_flow

    run_flow(curate_flow, config, home, as_json, budget=budget, seed=seed)


def sync_labels(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Pull finished Label Studio annotations into the label log (idempotent)."""
    from flows.sync_labels import sync_labels_flow

    run_flow(sync_labels_flow, config, home, as_json)


def retrain(
    force: Annotated[bool, typer.Option(help="retrain even if no trigger fires")] = False,
    reason: Annotated[str, typer.Option(help="why, when forced")] = "",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check triggers; if one fires: dataset version, fit, report card, gate, promote or keep."""
    from flows.retrain import retrain_flow

    result = run_flow(retrain_flow, config, home, as_json, force=force, reason=reason)
    if result.get("next") and not as_json:
        console.print(f"[bold]next:[/] {escape(result['next'])}", soft_wrap=True)


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
        str | None,
        typer.Option(
            "--json", help="also write the summary, with the seed and the rounds, to this file"
        ),
    ] = None,
    json_out_old: Annotated[str | None, typer.Option("--json-out", hidden=True)] = None,
    seed: Annotated[
        int | None, typer.Option(help="stream and annotator seed (default: the scenario's)")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="show Prefect's own log lines too")
    ] = False,
) -> None:
    """Run the whole loop on the task's embedded simulation (default: digits), with real Label
    Studio and Prefect servers, one round per batch."""
    from pathlib import Path

    from flows import services
    from flows.demo import demo_flow, prepare_home, resolve_scenario, simulation_of
    from flows.summary import print_summary
    from retrain.task import load_task

    cfg = config_or_fail(config)
    root = Path(home or cfg.home.path)
    json_out = json_out or json_out_old
    try:
        # a bad scenario fails here, before a previous demo's home or any server is touched
        from retrain.simulation import adopt_scenario_task

        note = adopt_scenario_task(cfg.task.plugin, cfg.task.classes, scenario or cfg.demo.scenario)
        if note:  # the scenario names its task (tabular...): every stage runs that one
            console.print(f"[dim]{note}[/]")
            cfg = config_or_fail(config)
        sim = simulation_of(load_task(cfg.task.plugin, cfg.task.classes))
        sim.load_scenario(resolve_scenario(sim, scenario or cfg.demo.scenario))
        note = prepare_home(root)
    except ValueError as exc:
        fail(exc)
    if note:
        console.print(f"[dim]{note}[/]")
    console.rule("[bold]loopwright demo")
    console.print("starting Label Studio and a Prefect server on 127.0.0.1 …")
    try:
        svc, token = services.start(cfg.labelstudio.url, cfg.prefect.port)
    except RuntimeError as exc:
        fail(exc)
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
                seed=seed,
            )
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10)  # send the last flow logs before the server stops
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
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


# In the order `loopwright --help` lists them.
COMMANDS = {
    "seed": cli_predictions.seed,
    "score-batch": cli_predictions.score_batch,
    "log-predictions": cli_predictions.log_predictions,
    "log-feedback": cli_curation.log_feedback,
    "drift-check": drift_check,
    "curate": curate,
    "sync-labels": sync_labels,
    "retrain": retrain,
    "promote": cli_ops.promote,
    "rollback": cli_ops.rollback,
    "status": cli_ops.status,
    "serve": cli_ops.serve,
    "compact": cli_compact.compact,
    "serve-model": cli_serving.serve_model,
    "demo": demo,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
cli_deploy.register(app)  # deploy, worker, webhook-receiver (docs/scale-out.md)


def _add_bench() -> None:
    """`loopwright bench …`: the scenario benchmark lives in flows/bench_cli.py."""
    try:
        from flows.bench_cli import bench_app
    except ImportError:  # the benchmark is optional at runtime
        return
    app.add_typer(bench_app, name="bench", help="Measure the loop against baselines.")


app.add_typer(rollout_app, name="rollout", help="Roll a candidate out online.")
app.add_typer(suite_app, name="suite", help="Named edge-case suites every report card runs.")
_add_bench()

if __name__ == "__main__":
    app()
