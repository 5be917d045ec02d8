"""`loopwright bench loop`: the scenario benchmark (policies x seeds), as a Typer sub-app."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.bench_policies import GATED

bench_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Measure the loop against baselines."
)
console = Console(width=160)


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def _fmt(v, spec: str = ".3f") -> str:
    if v is None:
        return "never"
    return format(v, spec) if isinstance(v, float) else str(v)


def print_summary(doc: dict) -> None:
    t = Table(
        title=f"{doc['scenario']['name']}: medians of {len(doc['seeds'])} seeds "
        f"(onset batch {doc['scenario']['onset_batch']})",
        caption="t/100: triggers per 100 batches (no-drift scenarios); r/10: retrains per 10 "
        "stable batches after recovery; harm: drops > 0.5 pt significant on the paired held-out "
        "images (exact McNemar, p < 0.05); >.5pt: drops > 0.5 pt at all; /orc: AUC / oracle's; "
        "h-o: held-out AUC; eMAE: label-free estimate's error (points); -: not measured here",
    )
    cols = [
        ("policy", None),
        ("labels", "d"),
        ("trig", "d"),
        ("t/100", ".2f"),
        ("false", "d"),
        ("delay", "d"),
        ("retr", "d"),
        ("r/10", ".2f"),
        ("promo", "d"),
        ("harm", "d"),
        (">.5pt", "d"),
        ("AUC", ".3f"),
        ("/orc", ".3f"),
        ("h-o", ".3f"),
        ("recov", "d"),
        ("eMAE", ".2f"),
    ]
    for c, _ in cols:
        t.add_column(
            c, justify="left" if c == "policy" else "right", no_wrap=True, min_width=len(c)
        )
    keys = [
        "labels",
        "n_triggers",
        "triggers",
        "false_triggers",
        "detection_delay",
        "n_retrains",
        "retrains_after_recovery",
        "promotions",
        "harmful_promotions",
        "drops_over_half_point",
        "auc",
        "auc_vs_oracle",
        "heldout_auc",
        "batches_to_recover",
        "estimate_mae",
    ]
    #: None means "not measured here", not "never": printed "-"
    undefined = ("triggers", "retrains_after_recovery", "harmful_promotions", "estimate_mae")
    for name, v in doc["policies"].items():
        m = v["median"]
        cells = []
        for k, (_, spec) in zip(keys, cols[1:], strict=True):
            val = m.get(k)
            if val is None and (
                k in undefined
                or (k in ("false_triggers", "detection_delay") and v["kind"] not in GATED)
            ):
                cells.append("-")
            elif spec == "d" and val is not None:
                cells.append(f"{val:g}")
            else:
                cells.append(_fmt(val, spec))
        t.add_row(name, *cells)
    console.print(t)
    for b, e in doc["efficiency"]["auc"].items():
        bounds = sorted({s["bound"] for s in e["seeds"]})
        console.print(
            f"label efficiency at {b} labels/batch: median {_fmt(e['median'], '.2f')}x "
            f"(AUC-matched random budget / {b}; bounds {bounds})"
        )
    for k, g in doc["goals"].items():
        mark = (
            "[yellow]unknown[/]"  # the runs lack the data (e.g. paired counts)
            if g["met"] is None
            else ("[green]met[/]" if g["met"] else "[red]NOT met[/]")
        )
        console.print(f"goal {k}: {mark} (measured {g['measured']}, goal {g.get('goal', '')})")


@bench_app.command("loop")
def loop(
    scenario: Annotated[str, typer.Option("--scenario", help="scenario TOML file or bundled name")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="how many stream seeds")] = 5,
    first_seed: Annotated[
        int | None,
        typer.Option(
            "--first-seed", help="seeds N..N+K-1 (absolute stream seeds; default the scenario's)"
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results here")] = None,
    plot_out: Annotated[Path | None, typer.Option("--plot", help="write the PNG here")] = None,
    budgets: Annotated[str, typer.Option(help="label budgets as shares of a batch")] = "0.05,0.1",
    multipliers: Annotated[str, typer.Option(help="loop-random budget multiples")] = "1,2,4,8",
    workers: Annotated[int, typer.Option(help="worker processes (1 thread each)")] = min(
        2, os.cpu_count() or 1
    ),
    degraded_checks: Annotated[int, typer.Option(help="shuffled-label challengers per run")] = 3,
    policies: Annotated[
        str,
        typer.Option(
            help="policies to run: kinds (configured, static, oracle, periodic-random, "
            "loop-random, loop-uncertainty) or names (loop-random@7); default all"
        ),
    ] = "",
    config: Annotated[
        Path | None,
        typer.Option("--config", help="loopwright.toml: the loop every policy starts from"),
    ] = None,
    via_labelstudio: Annotated[
        bool, typer.Option("--via-labelstudio", help="label through the real Label Studio server")
    ] = False,
) -> None:
    """Run a scenario on the engine under `configured` (the loop as the config sets it),
    static, oracle, periodic-random, loop-random (1x..8x budget) and loop-uncertainty, on
    the same stream and seeds; print medians. Each policy is config overrides."""
    from contextlib import nullcontext
    from datetime import UTC, datetime

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.bench import labelstudio_session, run_benchmark
    from flows.bench_policies import policy_config, select_policies
    from flows.bench_run import simulation_of
    from flows.config import load_config
    from retrain.simulation import adopt_scenario_task
    from retrain.task import load_task

    cfg = load_config(config)
    if cfg.storage.logs_url:  # each run is a home of its own, made by copying a template's folder
        raise typer.BadParameter(
            f"storage.logs_url = {cfg.storage.logs_url!r}: the benchmark runs every policy on "
            "a local home of its own; unset it (LOOPWRIGHT_STORAGE__LOGS_URL='') for bench loop",
            param_hint="--config",
        )
    note = adopt_scenario_task(cfg.task.plugin, cfg.task.classes, scenario)
    if note:  # the scenario names another task: it runs, in every worker (environment)
        console.print(f"[dim]{note}[/]")
        cfg = load_config(config)
    sim = simulation_of(load_task(cfg.task.plugin, cfg.task.classes))
    path = str(Path(scenario)) if Path(scenario).is_file() else str(sim.find_scenario(scenario))
    sc = sim.load_scenario(path)
    shares, mults = _floats(budgets), [int(m) for m in _floats(multipliers)]
    chosen = select_policies(sc.batch_size, shares, mults, policies.split(","))
    for p in chosen:  # a bad override is said before any job starts
        policy_config(p, config)
    start = sc.seed if first_seed is None else first_seed
    seed_list = list(range(start, start + seeds))
    command = "loopwright " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        job = bar.add_task(f"{sc.name}: policy x seed runs", total=len(seed_list) * len(chosen))

        def done(r: dict) -> None:
            bar.update(
                job,
                advance=1,
                description=f"{sc.name}: {r['policy']} seed {r['seed']} ({r['seconds']:.0f} s)",
            )

        runs_log = json_out.with_suffix(".runs.jsonl") if json_out else None
        # --via-labelstudio: labels through the [labelstudio] server, started (and stopped
        # afterwards) with scripts/labelstudio.sh if it is local and not up
        run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        with (
            labelstudio_session(cfg, run_id, say=bar.console.print)
            if via_labelstudio
            else nullcontext()
        ) as ls:
            doc = run_benchmark(
                path,
                seed_list,
                chosen,
                None if config is None else str(config),
                workers,
                done,
                command,
                tuple(mults),
                runs_log,
                ls,
                degraded_checks,
            )
    print_summary(doc)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        console.print(f"JSON: {json_out}")
    if plot_out:
        from flows.bench_plot import plot

        plot(doc, plot_out)
        console.print(f"plot: {plot_out}")


@bench_app.command("summary")
def summary(
    runs: Annotated[Path, typer.Option("--runs", help="a bench loop runs log (.runs.jsonl)")],
    scenario: Annotated[str, typer.Option("--scenario", help="the scenario those runs replayed")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the summary here")] = None,
    multipliers: Annotated[str, typer.Option(help="loop-random budget multiples")] = "1,2,4,8",
    config: Annotated[
        Path | None, typer.Option("--config", help="loopwright.toml (its task reads the scenario)")
    ] = None,
) -> None:
    """Summarise finished runs again with today's metrics (no job is run): e.g. runs logged
    by older code. Seeds missing a policy's run are left out; metrics whose data the runs
    lack (paired counts, estimates) come out null."""
    from flows.bench_run import simulation_of
    from flows.bench_summary import complete_seeds, policies_of, read_runs_log, summarise
    from flows.config import load_config
    from retrain.simulation import adopt_scenario_task
    from retrain.task import load_task

    cfg = load_config(config)
    if adopt_scenario_task(cfg.task.plugin, cfg.task.classes, scenario):
        cfg = load_config(config)
    sim = simulation_of(load_task(cfg.task.plugin, cfg.task.classes))
    path = str(Path(scenario)) if Path(scenario).is_file() else str(sim.find_scenario(scenario))
    found = read_runs_log(runs)
    chosen = policies_of(found)
    seeds = complete_seeds(found, chosen)
    if not seeds:
        raise typer.BadParameter(
            f"{runs}: no seed has a run of every policy yet", param_hint="--runs"
        )
    kept = [r for r in found if r["seed"] in seeds]
    command = "loopwright " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    mults = [int(m) for m in _floats(multipliers)]
    seconds = sum(r["seconds"] for r in kept)  # the jobs, run one after the other or not
    doc = summarise(path, seeds, chosen, cfg, kept, seconds, command, mults)
    print_summary(doc)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        console.print(f"JSON: {json_out}")
