"""`score-batch`: score a file of production inputs with the champion (and shadow) and log them.

The input file is Parquet with columns `request_id` (string), `input` (binary, the raw
input as the task encodes it), and optionally `attrs` (map<string,string>) and `ts`. The
work is the engine's `score` stage (`flows/loop/score.py`), one task.

`log-predictions` (`log_file`, a command, not a flow): log predictions a model served
elsewhere already made, from a Parquet file in the prediction-log schema.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.loop.score import ignored_note, log_file, open_parquet, read_inputs
from flows.steps import open_flow_loop

__all__ = ["ignored_note", "log_file", "open_parquet", "read_inputs", "score_batch_flow"]


@flow(name="score-batch", log_prints=True)
def score_batch_flow(
    input_path: str, config_path: str | None = None, home: str | None = None
) -> dict:
    """Score one file of production inputs and append it to the prediction log."""
    loop = open_flow_loop(config_path, home)
    result = loop.score(read_inputs(Path(input_path)))
    print(
        f"scored {result['rows'] - result['ignored']} inputs with champion {result['champion']}"
        + ignored_note(result["ignored"])
    )
    return result
