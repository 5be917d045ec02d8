"""Checks a prediction batch must pass before it enters the log, shared by `make_batch`
(NumPy in) and `validate_batch` (Arrow in). Each error names the field and the fix, because
the person reading it is wiring their own model into the loop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.home import StorageError
from storage.schemas import PREDICTION_SCHEMA

ROLES = ("champion", "shadow", "canary")
PROB_SUM_TOLERANCE = 1e-3
OPTIONAL_COLUMNS = ("input", "input_uri", "attrs")


def check_probs(probs: np.ndarray, n_classes: int | None = None) -> None:
    """Probability vectors: (N, C), finite, non-negative, rows summing to 1."""
    if probs.ndim != 2:
        raise StorageError(
            f"probs has shape {probs.shape}: expected (N, C), one probability vector per row"
        )
    if n_classes is not None and probs.shape[1] != n_classes:
        raise StorageError(
            f"probs has {probs.shape[1]} classes, the model has {n_classes}: "
            "log the full probability vector in the task's class order"
        )
    if not np.isfinite(probs).all():
        bad = ~np.isfinite(probs).all(axis=1)
        raise StorageError(
            f"probs row {int(np.argmax(bad))} has NaN or inf: log softmax probabilities, "
            "not logits that overflowed"
        )
    if (probs < 0).any():
        row = int(np.argmax((probs < 0).any(axis=1)))
        raise StorageError(
            f"probs row {row} has a negative value ({float(probs[row].min()):.4g}): "
            "log probabilities (softmax output), not logits"
        )
    sums = probs.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise StorageError(
            f"probs row {row} sums to {sums[row]:.4f}: each row must sum to 1 "
            f"(±{PROB_SUM_TOLERANCE}); apply softmax over all classes"
        )


def check_features(features: np.ndarray, n_features: int | None = None) -> None:
    """Feature vectors: (N, F), F the task's length when known, finite (drift statistics
    compare column by column and break on NaN; a vector of another length would be stored
    and then compared with the wrong columns, or break the window's matrix)."""
    if features.ndim != 2:
        raise StorageError(
            f"features has shape {features.shape}: expected (N, F), one vector per row"
        )
    if features.shape[1] == 0:
        raise StorageError("features has 0 columns: log at least one feature per row")
    if n_features is not None and features.shape[1] != n_features:
        raise StorageError(
            f"features has {features.shape[1]} values per row, the task's vectors have "
            f"{n_features}: log the task's full feature vector (task.features of the input) "
            "on every row"
        )
    if np.isfinite(features).all():  # the usual case; the row is searched only on failure
        return
    bad = ~np.isfinite(features).all(axis=1)
    raise StorageError(
        f"features row {int(np.argmax(bad))} has NaN or inf: impute or drop it before logging"
    )


def check_request_ids(ids: pa.Array | pa.ChunkedArray) -> None:
    """Non-empty and unique within the batch: the id is the idempotency key of the log."""
    if ids.null_count:
        raise StorageError("request_id has nulls: every prediction needs a request id")
    # empty or whitespace only; utf8_is_space is False for "" (no trimmed copy of the ids)
    empty = pc.or_(pc.equal(pc.binary_length(ids), 0), pc.utf8_is_space(ids))
    if pc.any(empty).as_py():
        row = pc.index(empty, True).as_py()
        raise StorageError(
            f"request_id row {row} is empty: give every prediction a non-empty request id"
        )
    if len(pc.unique(ids)) != len(ids):  # measured faster than count_distinct (pyarrow 26)
        counts = pc.value_counts(ids)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]
        raise StorageError(
            f"request_id {dup['values'].as_py()!r} appears {dup['counts'].as_py()} times in the "
            "batch: give each prediction its own request id (one row per request)"
        )


def check_in(column: pa.ChunkedArray, name: str, allowed: Sequence[str], fix: str) -> None:
    ok = pc.is_in(column, value_set=pa.array(list(allowed), pa.string()))
    if not pc.all(ok).as_py():
        bad = column.filter(pc.invert(ok))[0].as_py()
        raise StorageError(f"{name} {bad!r} is not one of {list(allowed)}: {fix}")


def _is_vector(t: pa.DataType) -> bool:
    kinds = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if not any(k(t) for k in kinds):
        return False
    v = t.value_type
    return pa.types.is_floating(v) or pa.types.is_integer(v)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Casts that cannot change meaning (widths and encodings, never text <-> numbers)."""
    if pa.types.is_null(src):
        return True
    if pa.types.is_string(dst):
        return _is_text(src)
    if pa.types.is_binary(dst):
        return any(
            f(src)
            for f in (
                pa.types.is_binary,
                pa.types.is_large_binary,
                pa.types.is_binary_view,
                pa.types.is_fixed_size_binary,
            )
        )
    if pa.types.is_floating(dst):
        return pa.types.is_floating(src) or pa.types.is_integer(src)
    if pa.types.is_list(dst):
        return _is_vector(src)
    if pa.types.is_timestamp(dst):
        return pa.types.is_timestamp(src) and src.tz is not None
    if pa.types.is_map(dst):
        return pa.types.is_map(src) and _is_text(src.key_type) and _is_text(src.item_type)
    return False


def _conform(name: str, column: pa.ChunkedArray, expected: pa.DataType) -> pa.ChunkedArray:
    if column.type == expected:
        return column
    if pa.types.is_timestamp(column.type) and column.type.tz is None:
        raise StorageError(
            f"column {name!r} has type {column.type} without a time zone: expected {expected}; "
            "build it from aware datetimes (datetime.now(timezone.utc))"
        )
    if not _castable(column.type, expected):
        raise StorageError(
            f"column {name!r} has type {column.type}, expected {expected}: "
            "convert it (or build the batch with make_batch)"
        )
    return column.cast(expected, safe=not pa.types.is_timestamp(expected))


def check_pred_matches(pred: pa.ChunkedArray, probs: np.ndarray, classes: Sequence[str]) -> None:
    """`pred` is a class name and a top class of its `probs` row: curation and the report card
    read `pred`, drift and the margins read `probs`, so both must come from the same output in
    the task's class order. Ties pass (any top class), so float32 rounding never fails a row."""
    index = pc.index_in(pred, value_set=pa.array([str(c) for c in classes], pa.string()))
    if index.null_count:
        bad = pred.filter(pc.is_null(index))[0].as_py()
        raise StorageError(
            f"pred {bad!r} is not one of {list(classes)}: pred must be a class name of the task"
        )
    top = index.to_numpy().astype(np.intp)
    chosen = np.take_along_axis(probs, top[:, None], axis=1)[:, 0]
    off = chosen < probs.max(axis=1)
    if off.any():
        row = int(np.argmax(off))
        best = int(np.argmax(probs[row]))
        raise StorageError(
            f"pred row {row} is {pred[row].as_py()!r} (p={float(chosen[row]):.4g}) but probs "
            f"peak at {classes[best]!r} (p={float(probs[row, best]):.4g}): pred must be the "
            "argmax of probs in the task's class order (make_batch and complete_batch compute it)"
        )


def _matrix(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """A list column as an (N, K) matrix of its own dtype (float32 in the contract: the checks
    need no float64 copy); all rows must have the same length. Read-only when zero-copy."""
    if column.null_count:
        raise StorageError(f"column {name!r} has nulls: every row needs a full vector")
    lengths = pc.list_value_length(column)
    bounds = pc.min_max(lengths)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo != hi:
        raise StorageError(
            f"column {name!r} has rows of different lengths ({lo} and {hi}): "
            "every row must have the same number of values"
        )
    return pc.list_flatten(column).to_numpy().reshape(len(column), lo)


def validate_batch(
    table: pa.Table, classes: Sequence[str] | None = None, n_features: int | None = None
) -> pa.Table:
    """Check a batch built outside `make_batch` and return it in `PREDICTION_SCHEMA`.

    Safe casts (float64 -> float32, large_string -> string, other time zones -> UTC) are
    applied; the optional `input`, `input_uri` and `attrs` columns are filled with nulls when
    absent; anything else wrong raises an error that names the column.
    """
    out = conform_batch(table)
    check_request_ids(out["request_id"])
    check_values(out, classes, n_features)
    return out


def conform_batch(table: pa.Table) -> pa.Table:
    """`table` in `PREDICTION_SCHEMA` (safe casts, optional columns filled with nulls), or an
    error naming the column that is unknown, missing, null or of the wrong type."""
    if table.num_rows == 0:
        raise StorageError("batch is empty: log at least one prediction")
    known = set(PREDICTION_SCHEMA.names)
    for name in table.column_names:
        if name not in known:
            raise StorageError(
                f"column {name!r} is not in the prediction log schema: "
                "drop it or put it in attrs (map<string,string>)"
            )
    columns = []
    for field in PREDICTION_SCHEMA:
        if field.name not in table.column_names:
            if field.name in OPTIONAL_COLUMNS:
                columns.append(pa.nulls(table.num_rows, field.type))
                continue
            raise StorageError(
                f"column {field.name!r} is missing: add it as {field.type} "
                "(make_batch builds every column)"
            )
        column = _conform(field.name, table[field.name], field.type)
        if field.name not in OPTIONAL_COLUMNS and column.null_count:
            raise StorageError(f"column {field.name!r} has nulls: every row needs a value")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=PREDICTION_SCHEMA)


def check_values(
    out: pa.Table, classes: Sequence[str] | None = None, n_features: int | None = None
) -> None:
    """Every check of `validate_batch` on a conformed batch except request-id uniqueness,
    which `PredictionLog.append` runs once across all of its chunks instead of per chunk."""
    check_in(out["role"], "role", ROLES, "log the serving role of the model")
    if not pc.all(pc.greater(pc.utf8_length(out["model_version"]), 0)).as_py():
        raise StorageError("model_version is empty: log the registry version that predicted")
    check_features(_matrix(out["features"], "features"), n_features)
    probs = _matrix(out["probs"], "probs")
    check_probs(probs, None if classes is None else len(classes))
    if classes is not None:
        check_pred_matches(out["pred"], probs, classes)
    for name in ("confidence", "margin", "entropy"):
        values = out[name].to_numpy()
        if not np.isfinite(values).all():
            raise StorageError(
                f"column {name!r} has NaN or inf: recompute it from probs (make_batch does)"
            )
