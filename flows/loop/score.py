"""The `score` stage: the champion (and the shadow) predict a production batch, and every
prediction is appended to the log; and `log_file`, for predictions a model served elsewhere
already made.

The incoming table has `request_id` (string), `input` (binary, the raw input as the task
encodes it), and optionally `attrs` (map<string,string>) and `ts` (kept as given: a
prediction's time is the traffic's, never this process's clock).

A request id logged before is ignored (the first logged prediction of an id is the one kept),
so replaying a batch adds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from retrain.label_shift import reweight
from storage.home import StorageError
from storage.prediction_log import (
    SHADOW_SUFFIX,
    PredictionLog,
    complete_batch,
    make_batch,
    validate_batch,
    without_ids,
)
from storage.routing import read_routing

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

REQUIRED = ("request_id", "input")


def read_inputs(path: Path) -> pa.Table:
    """A Parquet file of production inputs, or an error naming what is missing."""
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


def log_file(loop: Loop, path: Path, chunk_rows: int = 50_000) -> dict:
    """Validate then append a file of predictions, `chunk_rows` at a time (bounded memory);
    every chunk is validated before the first is written, so a bad row writes nothing."""
    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows = {chunk_rows}: pass a positive number of rows")
    pf = open_parquet(path)
    if pf.metadata.num_rows == 0:
        raise ValueError(f"input file {str(path)!r} is empty: log at least one prediction")
    classes, n_features = loop.task.classes, loop.n_features
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
        logged |= loop.logged_request_ids(ids)  # logged before: the first row stays
    log, written, parts = PredictionLog(loop.home), 0, 0
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


def score_table(loop: Loop, table: pa.Table) -> dict:
    """Predict with the serving aliases and append one prediction-log batch per role.

    Each row goes where the serving endpoint would send it: `Routing.role_for(request_id)`
    (the canary when the request id's hash falls under the canary's weight), so a rollout
    in process sees the same split as behind `loopwright serve-model`; the shadow scores
    every row, as there."""
    routing = read_routing(loop.home)
    champion = routing.champion
    if champion is None:
        from flows.loop.hints import no_champion_hint

        raise RuntimeError(f"no champion model to score with: {no_champion_hint(loop)}")
    rows = table.num_rows
    ignored = loop.logged_request_ids(table.column("request_id").to_pylist())
    table = without_ids(table, ignored)  # scored before: the first prediction stays
    if table.num_rows == 0:
        return {"rows": rows, "champion": champion, "written": {}, "ignored": len(ignored)}
    ids = table.column("request_id").to_pylist()
    inputs = table.column("input").to_pylist()
    x = loop.decode_inputs(inputs)
    features = np.asarray(loop.task.features(x))
    attrs = (
        [dict(a) if a is not None else {} for a in table.column("attrs").to_pylist()]
        if "attrs" in table.column_names
        else None
    )
    ts = table.column("ts").to_pylist() if "ts" in table.column_names else None
    if ts:
        loop.traffic_time = max(ts)  # the rollout's clock in a replay (flows.loop.online)
    roles = [routing.role_for(i) for i in ids]
    arms = [("champion", champion, [k for k, r in enumerate(roles) if r == "champion"])]
    if routing.canary is not None:
        arms.append(("canary", routing.canary, [k for k, r in enumerate(roles) if r == "canary"]))
    shadow = routing.shadow
    if shadow and shadow != champion:
        arms.append(("shadow", shadow, list(range(len(ids)))))
    log = PredictionLog(loop.home)
    written: dict[str, int] = {}
    confidence = None
    for role, version, idx in arms:
        if not idx:
            continue
        whole = len(idx) == len(ids)
        probs = loop.predictor(version)(x if whole else x[idx])
        if role != "shadow":  # served posteriors carry the version's label-shift correction
            probs = reweight(probs, routing.weights_for(version))

        def pick(seq, idx=idx, whole=whole):
            return seq if whole or seq is None else [seq[k] for k in idx]

        batch = make_batch(
            request_ids=pick(ids) if role != "shadow" else [i + SHADOW_SUFFIX for i in ids],
            features=features if whole else features[idx],
            probs=probs,
            classes=loop.task.classes,
            model_version=version,
            role=role,
            ts=pick(ts),
            inputs=pick(inputs),
            attrs=pick(attrs),
        )
        written[role] = log.append(batch, classes=loop.task.classes)
        if role == "champion":
            confidence = float(np.asarray(probs).max(axis=1).mean())
    return {
        "rows": rows,
        "champion": champion,
        "canary": routing.canary,
        "canary_weight": routing.canary_weight if routing.canary else 0.0,
        "written": written,
        "ignored": len(ignored),
        "mean_confidence": confidence,
    }
