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

bench_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Measure the loop against baselines."
)
console = Console(width=150)


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def _fmt(v, spec: str = ".3f") -> str:
    if v is None:
        return "never"
    return format(v, spec) if isinstance(v, float) else str(v)


def print_summary(doc: dict) -> None:
    t = Table(
        title=f"{doc['scenario']['name']}: medians of {len(doc['seeds'])} seeds "
        f"(onset batch {doc['scenario']['onset_batch']})"
    )
    cols = [
        ("policy", None),
        ("labels", "d"),
        ("triggers", "d"),
        ("false trig", "d"),
        ("delay", "d"),
        ("retrains", "d"),
        ("promotions", "d"),
        ("AUC", ".3f"),
        ("AUC/oracle", ".3f"),
        ("held-out AUC", ".3f"),
        ("recover", "d"),
    ]
    for c, _ in cols:
        t.add_column(c, justify="left" if c == "policy" else "right")
    keys = [
        "labels_spent",
        "n_triggers",
        "false_triggers",
        "detection_delay",
        "n_retrains",
        "n_promotions",
        "auc",
        "auc_vs_oracle",
        "heldout_auc",
        "batches_to_recover",
    ]
    for name, v in doc["policies"].items():
        m = v["median"]
        cells = []
        for k, (_, spec) in zip(keys, cols[1:], strict=True):
            val = m[k]
            if (
                val is None
                and k in ("false_triggers", "detection_delay")
                and v["kind"] not in ("loop-random", "loop-uncertainty")
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
        mark = "[green]met[/]" if g["met"] else "[red]NOT met[/]"
        console.print(f"goal {k}: {mark} (measured {g['measured']}, goal {g.get('goal', '')})")


@bench_app.command("loop")
def loop(
    scenario: Annotated[str, typer.Option("--scenario", help="scenario TOML file or bundled name")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="seeds 0..N-1")] = 5,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results here")] = None,
    plot_out: Annotated[Path | None, typer.Option("--plot", help="write the PNG here")] = None,
    budgets: Annotated[str, typer.Option(help="label budgets as shares of a batch")] = "0.05,0.1",
    multipliers: Annotated[str, typer.Option(help="loop-random budget multiples")] = "1,2,4,8",
    workers: Annotated[int, typer.Option(help="worker processes (1 thread each)")] = min(
        2, os.cpu_count() or 1
    ),
    periodic_every: Annotated[
        int, typer.Option(help="periodic-random retrains every k batches")
    ] = 5,
    fit_samples: Annotated[
        int | None,
        typer.Option(help="examples seen per fine-tune (default: [retrain] fit_samples)"),
    ] = None,
    degraded_checks: Annotated[int, typer.Option(help="shuffled-label challengers per run")] = 3,
    policies: Annotated[str, typer.Option(help="policy kinds to run")] = ",".join(
        ("static", "periodic-random", "loop-random", "loop-uncertainty", "oracle")
    ),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="loopwright.toml whose [trigger] [drift] [curation] [retrain] [gate] the loop policies use",
        ),
    ] = None,
    candidate_batches: Annotated[
        int,
        typer.Option(
            help="curate from the last k batches (10 x 200 rows = [curation] window_rows)"
        ),
    ] = 10,
    via_labelstudio: Annotated[
        bool, typer.Option("--via-labelstudio", help="label through the real Label Studio server")
    ] = False,
) -> None:
    """Replay a scenario under static, periodic-random, loop-random (1x..8x budget),
    loop-uncertainty and oracle, on the same stream and seeds; print medians."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.bench import make_policies, run_benchmark
    from flows.bench_world import settings_from_config
    from flows.config import load_config
    from retrain.digits.scenario import find_scenario, load_scenario

    path = str(find_scenario(scenario))
    sc = load_scenario(path)
    shares, mults = _floats(budgets), [int(m) for m in _floats(multipliers)]
    cfg = load_config(config)
    settings = settings_from_config(
        cfg,
        periodic_every=periodic_every,
        **({"fit_samples": fit_samples} if fit_samples else {}),
        degraded_checks=degraded_checks,
        candidate_batches=candidate_batches,
    )
    kinds = tuple(k.strip() for k in policies.split(",") if k.strip())
    n_jobs = seeds * len(make_policies(sc.batch_size, shares, mults, kinds))
    command = "loopwright " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        job = bar.add_task(f"{sc.name}: policy x seed runs", total=n_jobs)

        def done(r: dict) -> None:
            bar.update(
                job,
                advance=1,
                description=f"{sc.name}: {r['policy']} seed {r['seed']} ({r['seconds']:.0f} s)",
            )

        runs_log = json_out.with_suffix(".runs.jsonl") if json_out else None
        # --via-labelstudio: labels through the [labelstudio] server, started (and stopped
        # afterwards) with scripts/labelstudio.sh if it is local and not up
        from contextlib import nullcontext
        from datetime import UTC, datetime

        from flows.bench_labelstudio import labelstudio_session

        run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        with (
            labelstudio_session(cfg, run_id, say=bar.console.print)
            if via_labelstudio
            else nullcontext()
        ) as ls:
            doc = run_benchmark(
                path, seeds, settings, shares, mults, workers, done, command, kinds, runs_log, ls
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
