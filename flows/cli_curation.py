"""`loopwright curate --like REQUEST_ID` and `loopwright log-feedback`: curation a person
drives (a known failure's neighbours, users' feedback), on the engine without Prefect, as
`log-predictions` is: each is one call of the function the tests call."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.cli_common import ConfigOpt, HomeOpt, JsonOpt, config_or_fail, console, fail


def _run(step, config, home, as_json: bool, summary) -> dict:
    from flows.loop.open import open_loop

    config_or_fail(config)
    try:
        result = step(open_loop(config, home))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
    if as_json:
        console.print_json(json.dumps(result, default=str))
    else:
        console.print(summary(result), soft_wrap=True)
    return result


def curate_like(request_id: str, k: int, config, home, as_json: bool) -> dict:
    """The `curate --like` branch of `loopwright curate`."""
    from flows.loop.like import curate_like as run

    def summary(r: dict) -> str:
        if not r["selected"]:
            return f"nothing sent for rows like {request_id}: {r['note']}"
        near = ", ".join(f"{n['request_id']} ({n['similarity']:.3f})" for n in r["neighbours"])
        return (
            f"sent {r['selected']} rows like {request_id} (reason like:{request_id}); "
            f"{r['imported']} imported into Label Studio project {r['project_id']}: {near}"
        )

    return _run(lambda loop: run(loop, request_id, k), config, home, as_json, summary)


def log_feedback(
    input: Annotated[
        str,
        typer.Option(
            "--input",
            help="JSONL or Parquet: request_id, label (a class) and/or thumbs (up | down)",
        ),
    ],
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Log users' feedback: labels (source feedback) and thumbs-down rows for labelers first."""
    from flows.loop.feedback import log_feedback_file

    def summary(r: dict) -> str:
        return (
            f"{r['rows']} feedback rows: {r['labels']} labels logged (source feedback), "
            f"{r['thumbs_down_queued']} thumbs-down rows queued for labelers first"
            + (
                f" ({r['thumbs_down_skipped']} already labeled or queued)"
                if r["thumbs_down_skipped"]
                else ""
            )
            + (
                "; `loopwright curate` sends them to Label Studio"
                if r["thumbs_down_queued"]
                else ""
            )
        )

    _run(lambda loop: log_feedback_file(loop, input), config, home, as_json, summary)
