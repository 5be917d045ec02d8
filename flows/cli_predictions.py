"""`loopwright seed`, `score-batch` and `log-predictions`: data into the home (labeled
examples into the seed, production traffic into the prediction log)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.cli_common import ConfigOpt, HomeOpt, JsonOpt, config_or_fail, console, fail, run_flow


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

    run_flow(score_batch_flow, config, home, as_json, input_path=input)


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
    from flows.loop.score import ignored_note, log_file

    def summary(result: dict) -> str:
        return (
            f"logged {result['rows']} predictions from {input} ({result['chunks']} chunks)"
            + ignored_note(result["ignored"])
        )

    _from_file(
        lambda loop, path: log_file(loop, path, chunk_rows), input, summary, config, home, as_json
    )


def seed(
    input: Annotated[
        str,
        typer.Option("--input", help="Parquet file: request_id, input, label[, attrs]"),
    ],
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add your own labeled examples to the seed, the data the first champion learns from."""
    from flows.seed import seed_file, seed_summary

    _from_file(seed_file, input, seed_summary, config, home, as_json)


def _from_file(run, input: str, summary, config, home, as_json: bool) -> None:
    """Run a file-taking step (`run(loop, path) -> dict`); a bad file is one clear error."""
    from pathlib import Path

    from flows.loop.open import open_loop

    config_or_fail(config)
    try:
        result = run(open_loop(config, home), Path(input))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
    if as_json:
        console.print_json(json.dumps(result))
    else:
        console.print(summary(result), soft_wrap=True)
