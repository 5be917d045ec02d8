"""The prediction log (contract): one row per prediction, append-only Parquet partitioned by
the UTC date of `ts`. Uncertainty scores are computed once, at log time, so that curation
and drift never need the model again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.batch_checks import (
    ROLES,
    _conform,
    _matrix,
    check_features,
    check_probs,
    check_request_ids,
    check_values,
    conform_batch,
    validate_batch,
)
from storage.columns import attrs_array, optional_array, timestamp_array, vector_array
from storage.home import DataHome, StorageError
from storage.parquet_parts import ParquetLayout, write_partitioned
from storage.schemas import PREDICTION_SCHEMA

__all__ = [
    "PREDICTION_LAYOUT",
    "PREDICTION_SCHEMA",
    "ROLES",
    "PredictionLog",
    "complete_batch",
    "make_batch",
    "validate_batch",
    "without_ids",
]
DERIVED = ("pred", "confidence", "margin", "entropy")

# Dictionaries only where values repeat (a handful of versions, roles, classes, attr keys):
# on float vectors, scores, unique ids and timestamps pyarrow builds one, overflows the page
# limit and falls back to plain; that was ~30% of the write and files come out 8% smaller
# without it. Statistics on all but the vectors (another ~10%): readers prune on
# ts/model_version/role, never on one vector element. bench/RESULTS.md "Logging" has figures.
PREDICTION_LAYOUT = ParquetLayout(
    dictionary=("model_version", "role", "pred", "attrs"),
    statistics=tuple(n for n in PREDICTION_SCHEMA.names if n not in ("features", "probs")),
)


#: shadow rows are logged as `<request_id>#shadow` (docs/contracts.md): the log's request_id
#: stays unique while the champion's row and the shadow's row of one request both exist
SHADOW_SUFFIX = "#shadow"


def uncertainty(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(argmax, confidence = top1, margin = top1 - top2, entropy = -sum p ln p with 0 ln 0 = 0)."""
    p = np.asarray(probs, dtype=np.float64)
    top = np.argmax(p, axis=1)
    if p.shape[1] > 1:
        two = -np.partition(-p, 1, axis=1)[:, :2]
        confidence, margin = two[:, 0], two[:, 0] - two[:, 1]
    else:
        confidence, margin = p[:, 0], p[:, 0]
    logs = np.log(np.where(p > 0, p, 1.0))
    entropy = -(p * logs).sum(axis=1)
    return top, confidence, margin, np.maximum(entropy, 0.0)


def make_batch(
    *,
    request_ids: Sequence[str],
    features: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    model_version: str,
    role: str = "champion",
    ts: datetime | Sequence[datetime] | None = None,
    inputs: Sequence[bytes | None] | None = None,
    input_uris: Sequence[str | None] | None = None,
    attrs: Sequence[Mapping[str, str]] | None = None,
) -> pa.Table:
    """Build a validated prediction-log batch from a model's output.

    >>> t = make_batch(request_ids=["r1"], features=np.zeros((1, 2)),
    ...                probs=np.array([[0.7, 0.2, 0.1]]), classes=["a", "b", "c"],
    ...                model_version="v0001")
    >>> t["pred"][0].as_py(), round(t["margin"][0].as_py(), 3)
    ('a', 0.5)
    """
    ids = list(request_ids)
    n = len(ids)
    if n == 0:
        raise StorageError("batch is empty: log at least one prediction")
    classes = [str(c) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise StorageError(f"classes {classes}: pass at least 2 distinct class names")
    if not isinstance(model_version, str) or not model_version:
        raise StorageError("model_version is empty: pass the registry version that predicted")
    if role not in ROLES:
        raise StorageError(f"role {role!r} is not one of {list(ROLES)}: pass the serving role")
    if not all(isinstance(r, str) for r in ids):
        raise StorageError("request_ids must be strings: convert them with str() upstream")
    id_array = pa.array(ids, pa.string())
    check_request_ids(id_array)
    features = np.asarray(features, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    for name, m in (("features", features), ("probs", probs)):
        if m.ndim >= 1 and m.shape[0] != n:
            raise StorageError(
                f"{name} has {m.shape[0]} rows for {n} request_ids: pass one row per prediction"
            )
    check_features(features)
    check_probs(probs, len(classes))
    top, confidence, margin, entropy = uncertainty(probs)
    columns = {
        "request_id": id_array,
        "ts": timestamp_array(ts, n),
        "model_version": pa.array([model_version] * n, pa.string()),
        "role": pa.array([role] * n, pa.string()),
        "features": vector_array(features),
        "input": optional_array(inputs, n, "inputs", bytes),
        "input_uri": optional_array(input_uris, n, "input_uris", str),
        "probs": vector_array(probs),
        "pred": pc.take(pa.array(classes, pa.string()), pa.array(top)),
        "confidence": pa.array(confidence, pa.float32()),
        "margin": pa.array(margin, pa.float32()),
        "entropy": pa.array(entropy, pa.float32()),
        "attrs": attrs_array(attrs, n),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=PREDICTION_SCHEMA)


def complete_batch(table: pa.Table, classes: Sequence[str]) -> pa.Table:
    """Fill what loopwright can compute in a batch a model served elsewhere wrote: `pred`,
    `confidence`, `margin`, `entropy` from `probs` (when all four are absent), `ts` (now) and
    `role` (champion) when absent. The result still goes through `validate_batch`.
    """
    names = table.column_names
    given = [c for c in DERIVED if c in names]
    if given and len(given) != len(DERIVED):
        missing = [c for c in DERIVED if c not in names]
        raise StorageError(
            f"columns {missing} are missing while {given} are given: give all of "
            f"{list(DERIVED)} or none (loopwright computes them from probs)"
        )
    n = table.num_rows
    if "ts" not in names:
        table = table.append_column("ts", timestamp_array(None, n))
    if "role" not in names:
        table = table.append_column("role", pa.array(["champion"] * n, pa.string()))
    if given or n == 0:
        return table
    if "probs" not in names:
        raise StorageError(
            "column 'probs' is missing: add the full class-probability vector as list<float32>"
        )
    probs = _matrix(
        _conform("probs", table["probs"], PREDICTION_SCHEMA.field("probs").type), "probs"
    )
    check_probs(probs, len(classes))
    top, confidence, margin, entropy = uncertainty(probs)
    derived = {
        "pred": pc.take(pa.array([str(c) for c in classes], pa.string()), pa.array(top)),
        "confidence": pa.array(confidence, pa.float32()),
        "margin": pa.array(margin, pa.float32()),
        "entropy": pa.array(entropy, pa.float32()),
    }
    for name, column in derived.items():
        table = table.append_column(name, column)
    return table


class PredictionLog:
    """Appends validated batches; several processes may append at once (one file each)."""

    def __init__(self, home: DataHome) -> None:
        self.home = home

    @property
    def glob(self) -> str:
        """The DuckDB glob of every visible part."""
        return f"{self.home.predictions}/**/*.parquet"

    def append(
        self,
        table: pa.Table,
        classes: Sequence[str] | None = None,
        chunk_rows: int = 100_000,
        n_features: int | None = None,
    ) -> int:
        """Validate and write `table`; return the number of rows written.

        Every chunk is validated before the first is written, so a bad row anywhere writes
        nothing; request ids are checked once across all chunks. The validated chunks are
        kept for the write (zero-copy slices of `table` when it is already in the contract
        schema, at most one narrower copy when a cast was needed), so validation runs once.
        Each chunk of `chunk_rows` becomes one part per date. `n_features`, when given, is
        the length every `features` row must have. The same request id appended in two calls
        is stored twice and readers keep the first: callers that take ids from outside drop
        the already logged ones first (`without_ids`) and say how many they ignored.
        """
        if chunk_rows < 1:
            raise StorageError(f"chunk_rows is {chunk_rows}: pass a positive number of rows")
        if table.num_rows == 0:
            raise StorageError("batch is empty: log at least one prediction")
        chunks = []
        for start in range(0, table.num_rows, chunk_rows):
            chunk = conform_batch(table.slice(start, chunk_rows))
            check_values(chunk, classes, n_features)
            chunks.append(chunk)
        ids = [a for c in chunks for a in c["request_id"].chunks]
        check_request_ids(pa.chunked_array(ids, pa.string()))
        written = 0
        for chunk in chunks:
            write_partitioned(chunk, self.home.predictions, "ts", PREDICTION_LAYOUT)
            written += chunk.num_rows
        return written


def without_ids(table: pa.Table, ids: set[str]) -> pa.Table:
    """`table` without the rows whose request id is in `ids` (e.g. already logged ones)."""
    if not ids:
        return table
    drop = pc.is_in(table.column("request_id"), value_set=pa.array(sorted(ids), pa.string()))
    return table.filter(pc.invert(drop))
