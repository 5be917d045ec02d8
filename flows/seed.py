"""`loopwright seed`: a user's own labeled examples, the data the first champion learns from.

The file is Parquet with columns `request_id` (string), `input` (binary, encoded as the
task's `encode_input` does), `label` (string, a class name of the task) and optionally
`attrs` (map<string,string>). The features drift-check compares are computed from the
decoded inputs with the task's own `features`, exactly as `score-batch` computes the
logged ones, so the reference and the traffic are measured the same way.

The whole file is checked before anything is written; ids already in the seed are skipped
(and counted), so seeding the same file twice adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from flows.loop.engine import Loop
from flows.loop.hints import TEST_SHARE
from flows.loop.score import open_parquet
from storage.seed import write_seed

REQUIRED = {"request_id": "string", "input": "binary", "label": "string"}
OPTIONAL = {"attrs": "map<string,string>"}


def _check_columns(table: pa.Table, where: str) -> None:
    for name in table.column_names:
        if name not in REQUIRED and name not in OPTIONAL:
            raise ValueError(
                f"{where}: column {name!r} is not a seed column: keep request_id, input, label "
                "and attrs (slice attributes go in attrs)"
            )
    for name, kind in REQUIRED.items():
        if name not in table.column_names:
            raise ValueError(f"{where}: column {name!r} is missing: add it as {kind}")
        column = table.column(name)
        ok = {
            "string": pa.types.is_string(column.type) or pa.types.is_large_string(column.type),
            "binary": pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type),
        }[kind]
        if not ok:
            fix = (
                "write class names as strings"
                if name == "label"
                else "store each input as the task's encode_input bytes"
                if name == "input"
                else "convert it"
            )
            raise ValueError(
                f"{where}: column {name!r} has type {column.type}, expected {kind}: {fix}"
            )
        if column.null_count:
            raise ValueError(f"{where}: column {name!r} has nulls: every example needs a value")


def read_seed_file(path: Path) -> pa.Table:
    """The file's rows, or an error naming the column and the fix."""
    where = f"seed file {str(path)!r}"
    table = open_parquet(path).read()
    if table.num_rows == 0:
        raise ValueError(f"{where} is empty: it needs at least one labeled example")
    _check_columns(table, where)
    return table


def seed_file(loop: Loop, path: Path) -> dict:
    """Check then write the labeled examples of `path` into the seed (source `seed`)."""
    table = read_seed_file(path)
    where = f"seed file {str(path)!r}"
    ids = table.column("request_id").to_pylist()
    inputs = table.column("input").to_pylist()
    try:
        x = loop.task.decode_inputs(inputs)
    except ValueError as err:
        raise ValueError(
            f"{where}: {err} (inputs must be the bytes task {loop.task.name!r} encodes)"
        ) from None
    attrs = None
    if "attrs" in table.column_names:
        attrs = [dict(a) if a is not None else {} for a in table.column("attrs").to_pylist()]
    before = len(loop.queries.seed_ids())
    try:
        written = write_seed(
            loop.home,
            request_ids=ids,
            features=loop.task.features(x),
            inputs=inputs,
            labels=table.column("label").to_pylist(),
            attrs=attrs,
            classes=loop.task.classes,
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    total = before + written
    return {
        "file": str(path),
        "rows": table.num_rows,
        "written": written,
        "already_seeded": table.num_rows - written,
        "seed_rows": total,
        "eval_rows_expected": round(total * TEST_SHARE),
        "min_eval_rows": loop.cfg.gate.min_eval_rows,
    }


def seed_summary(result: dict) -> str:
    """One paragraph for the terminal: what was written, and what the first model will face."""
    text = f"seeded {result['written']} labeled examples from {result['file']}"
    if result["already_seeded"]:
        text += f" ({result['already_seeded']} request ids were already in the seed: skipped)"
    text += f"; the seed holds {result['seed_rows']}."
    expected, minimum = result["eval_rows_expected"], result["min_eval_rows"]
    if expected < minimum:
        text += (
            f" About {expected} of them will be held out to judge the first model, fewer than "
            f"[gate] min_eval_rows = {minimum}: `loopwright retrain` will register it without "
            'promoting it; then `loopwright promote VERSION --reason "..."` if you trust it, '
            f"or seed about {int(minimum / TEST_SHARE)} examples in all."
        )
    else:
        text += " Next: `loopwright retrain` trains and judges the first model."
    return text
