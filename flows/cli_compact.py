"""`loopwright compact`: merge the logs' small parts (the same function as the scheduled
`compact` deployment)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli_common import ConfigOpt, HomeOpt, JsonOpt, run_flow

LogOpt = Annotated[
    list[str] | None,
    typer.Option("--log", help="predictions, labels or queue (repeatable; default: all three)"),
]


def compact(
    log: LogOpt = None, config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False
) -> None:
    """Merge each log partition's small parts into big files (storage.compact_target_mb);
    readers keep seeing every row once meanwhile."""
    from flows.compact import compact_flow

    run_flow(compact_flow, config, home, as_json, logs=log or None)
