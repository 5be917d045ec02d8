"""`loopwright score-batch` and `log-predictions`: production traffic into the prediction log."""

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
    from pathlib import Path

    from flows.runtime import open_runtime
    from flows.score_batch import log_file

    config_or_fail(config)
    try:
        result = log_file(open_runtime(config, home), Path(input), chunk_rows)
    except (ValueError, RuntimeError, OSError) as exc:
        fail(exc)
    if as_json:
        console.print_json(json.dumps(result))
    else:
        console.print(
            f"logged {result['rows']} predictions from {input} ({result['chunks']} chunks)"
        )
