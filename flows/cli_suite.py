"""`loopwright suite add NAME (--request-ids a,b | --where SQL) | list | show NAME | remove NAME`.

Edge-case suites act on files of the data home directly (`storage/suites.py`); no Prefect
server is involved: a person who just found a failure mode adds its rows from the terminal,
and every later report card runs the suite (the gate requires it with `--required`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flows.cli_common import ConfigOpt, HomeOpt, JsonOpt, config_or_fail, console, fail

suite_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Named edge-case suites every card runs."
)
NameArg = Annotated[str, typer.Argument(help="suite name: lowercase letters, digits, - or _")]


def _home(config: str | None, home: str | None):
    from flows.loop.open import open_home

    cfg = config_or_fail(config)
    try:
        return open_home(Path(home) if home else cfg.home_path, cfg.storage)
    except (ValueError, OSError) as exc:
        fail(exc)


def _summary(s) -> str:
    rule = (
        f"min accuracy {s.min_accuracy:.3f}"
        if s.min_accuracy is not None
        else f"tolerance {s.tolerance:.3f} vs champion"
    )
    flag = "required" if s.required else "reported"
    return f"{s.name}: {len(s.request_ids)} rows, {flag}, {rule}" + (
        f" — {s.description}" if s.description else ""
    )


@suite_app.command("add")
def add(
    name: NameArg,
    request_ids: Annotated[
        str | None, typer.Option("--request-ids", help="labeled request ids, comma-separated")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="SQL condition on the prediction log (columns: request_id, ts, model_version, "
            "role, pred, confidence, margin, entropy, attrs, label, label_source, ...), "
            "e.g. \"attrs['device'] = 'scanner-b' AND pred <> label\"",
        ),
    ] = None,
    required: Annotated[
        bool, typer.Option("--required", help="the gate refuses a challenger that fails it")
    ] = False,
    description: Annotated[str, typer.Option(help="why these rows matter")] = "",
    tolerance: Annotated[
        float, typer.Option(help="accuracy the challenger may lose to the champion (0..1)")
    ] = 0.0,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            help="pass when the challenger reaches this accuracy (instead of vs champion)"
        ),
    ] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn labeled rows (picked by id, or by a SQL condition) into a named suite."""
    from storage.suites import add_suite

    if (request_ids is None) == (where is None):
        fail(ValueError("give exactly one of --request-ids and --where"))
    root = _home(config, home)
    ids = None if request_ids is None else [i for i in request_ids.split(",") if i.strip()]
    try:
        suite = add_suite(
            root,
            name,
            request_ids=ids,
            where=where,
            required=required,
            description=description,
            tolerance=tolerance,
            min_accuracy=min_accuracy,
        )
    except ValueError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(suite.to_dict(), indent=2))
        return
    console.print(f"added suite {escape(_summary(suite))}", soft_wrap=True)
    left = []
    if suite.dropped_unlabeled:
        left.append(f"{suite.dropped_unlabeled} without a label")
    if suite.unknown:
        left.append(f"{suite.unknown} not in the prediction log or the seed")
    if left:
        console.print(f"dropped {', '.join(left)}", soft_wrap=True)


@suite_app.command("list")
def list_(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Every suite of the data home."""
    from storage.suites import list_suites

    try:
        suites = list_suites(_home(config, home))
    except ValueError as exc:
        fail(exc)
    if as_json:
        print(json.dumps([s.to_dict() for s in suites], indent=2))
        return
    if not suites:
        console.print("no suites yet: `loopwright suite add NAME --request-ids ...`")
    for s in suites:
        console.print(escape(_summary(s)), soft_wrap=True)


@suite_app.command("show")
def show(name: NameArg, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """A suite's file: its rows, rule, SQL and when it was added (JSON)."""
    from storage.suites import load_suite

    try:
        suite = load_suite(_home(config, home), name)
    except ValueError as exc:
        fail(exc)
    print(json.dumps(suite.to_dict(), indent=2))


@suite_app.command("remove")
def remove(name: NameArg, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Delete a suite; later cards no longer run it."""
    from storage.suites import remove_suite

    try:
        suite = remove_suite(_home(config, home), name)
    except ValueError as exc:
        fail(exc)
    console.print(f"removed suite {escape(suite.name)} ({len(suite.request_ids)} rows)")
