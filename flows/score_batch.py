"""`score-batch`: score a file of production inputs with the champion (and shadow) and log them.

The input file is Parquet with columns `request_id` (string), `input` (binary, the raw
input as the task encodes it), and optionally `attrs` (map<string,string>) and `ts`.

`log-predictions` (`log_file`): log predictions a model served elsewhere already made, from
a Parquet file in the prediction-log schema (`pred`, the uncertainty scores, `ts` and
`role` may be left out). A file of any size is read in chunks of `chunk_rows`; every chunk
is validated before the first is written, so a bad row anywhere writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.runtime import Runtime, open_runtime
from storage.home import StorageError
from storage.prediction_log import (
    PredictionLog,
    complete_batch,
    make_batch,
    validate_batch,
    without_ids,
)

REQUIRED = ("request_id", "input")


def read_inputs(path: Path) -> pa.Table:
    if not path.is_file():
        raise ValueError(
            f"input file {str(path)!r} does not exist: pass --input PATH to a Parquet file"
        )
    table = pq.read_table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(
            f"input file {str(path)!r} lacks column(s) {missing}: it needs request_id (string) "
            "and input (binary)"
        )
    if table.num_rows == 0:
        raise ValueError(f"input file {str(path)!r} is empty: score at least one input")
    return table


def open_parquet(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise ValueError(
            f"input file {str(path)!r} does not exist: pass --input PATH to a Parquet file"
        )
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(
            f"input file {str(path)!r} is not a Parquet file ({err}): write it with "
            "pyarrow.parquet.write_table"
        ) from None


def _chunks(pf: pq.ParquetFile, chunk_rows: int):
    start = 0
    for batch in pf.iter_batches(batch_size=chunk_rows):
        yield start, pa.Table.from_batches([batch])
        start += batch.num_rows


def log_file(rt: Runtime, path: Path, chunk_rows: int = 50_000) -> dict:
    """Validate then append a file of predictions, `chunk_rows` at a time (bounded memory)."""
    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows = {chunk_rows}: pass a positive number of rows")
    pf = open_parquet(path)
    if pf.metadata.num_rows == 0:
        raise ValueError(f"input file {str(path)!r} is empty: log at least one prediction")
    classes, n_features = rt.task.classes, rt.n_features
    seen: set[str] = set()
    logged: set[str] = set()
    for start, chunk in _chunks(pf, chunk_rows):  # pass 1: validate everything
        where = f"input file {str(path)!r}, rows {start}..{start + chunk.num_rows - 1}"
        try:
            table = validate_batch(complete_batch(chunk, classes), classes, n_features)
        except StorageError as err:
            raise StorageError(f"{where}: {err}") from None
        ids = table.column("request_id").to_pylist()
        dup = next((i for i in ids if i in seen), None)
        if dup is not None:
            raise StorageError(
                f"{where}: request_id {dup!r} appears more than once in the file: "
                "give each prediction its own request id"
            )
        seen.update(ids)
        logged |= rt.logged_request_ids(ids)  # logged before: the first row stays
    log, written, parts = PredictionLog(rt.home), 0, 0
    for _, chunk in _chunks(pf, chunk_rows):  # pass 2: write
        chunk = without_ids(complete_batch(chunk, classes), logged)
        if chunk.num_rows:
            written += log.append(chunk, classes=classes, n_features=n_features)
            parts += 1
    return {"rows": written, "ignored": len(logged), "chunks": parts, "file": str(path)}


def ignored_note(n: int) -> str:
    if not n:
        return ""
    return (
        f"; {n} request ids were already in the prediction log and are ignored "
        "(the first logged prediction of a request id is the one kept)"
    )


def score_table(rt: Runtime, table: pa.Table) -> dict:
    """Predict with the serving aliases and append one prediction-log batch per role."""
    champion = rt.registry.get("champion")
    if champion is None:
        from flows.status import no_champion_hint

        raise RuntimeError(f"no champion model to score with: {no_champion_hint(rt)}")
    rows = table.num_rows
    ignored = rt.logged_request_ids(table.column("request_id").to_pylist())
    table = without_ids(table, ignored)  # scored before: the first prediction stays
    if table.num_rows == 0:
        return {"rows": rows, "champion": champion, "written": {}, "ignored": len(ignored)}
    ids = table.column("request_id").to_pylist()
    x = rt.task.decode_inputs(table.column("input").to_pylist())
    features = rt.task.features(x)
    inputs = table.column("input").to_pylist()
    attrs = (
        [dict(a) if a is not None else {} for a in table.column("attrs").to_pylist()]
        if "attrs" in table.column_names
        else None
    )
    ts = table.column("ts").to_pylist() if "ts" in table.column_names else None
    log = PredictionLog(rt.home)
    written = {}
    roles = [("champion", champion)]
    shadow = rt.registry.get("shadow")
    if shadow and shadow != champion:
        roles.append(("shadow", shadow))
    confidence = None
    for role, version in roles:
        probs = rt.predictor(version)(x)
        batch = make_batch(
            request_ids=ids if role == "champion" else [f"{i}#shadow" for i in ids],
            features=features,
            probs=probs,
            classes=rt.task.classes,
            model_version=version,
            role=role,
            ts=ts,
            inputs=inputs,
            attrs=attrs,
        )
        written[role] = log.append(batch, classes=rt.task.classes)
        if role == "champion":
            confidence = float(np.asarray(probs).max(axis=1).mean())
    return {
        "rows": rows,
        "champion": champion,
        "written": written,
        "ignored": len(ignored),
        "mean_confidence": confidence,
    }


@task(name="score", cache_policy=NO_CACHE)
def score(rt: Runtime, table: pa.Table) -> dict:
    return score_table(rt, table)


@flow(name="score-batch", log_prints=True)
def score_batch_flow(
    input_path: str, config_path: str | None = None, home: str | None = None
) -> dict:
    """Score one file of production inputs and append it to the prediction log."""
    rt = open_runtime(config_path, home)
    table = read_inputs(Path(input_path))
    result = score(rt, table)
    print(
        f"scored {result['rows'] - result['ignored']} inputs with champion {result['champion']}"
        + ignored_note(result["ignored"])
    )
    return result
