"""Arrow column builders shared by the writers (NumPy and Python values in, typed arrays out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from storage.home import StorageError
from storage.schemas import ATTRS_TYPE, TS_TYPE


def vector_array(matrix: np.ndarray) -> pa.ListArray:
    """(N, K) -> list<float32> without a Python loop."""
    n, k = matrix.shape
    if n * k >= 2**31:
        raise StorageError(
            f"batch has {n * k} vector values: split it into smaller batches (< 2**31 values)"
        )
    offsets = pa.array((np.arange(n + 1, dtype=np.int64) * k).astype(np.int32), pa.int32())
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), pa.float32())
    return pa.ListArray.from_arrays(offsets, values)


def timestamp_array(ts: datetime | Sequence[datetime] | None, n: int) -> pa.Array:
    if ts is None:
        ts = datetime.now(UTC)
    stamps = [ts] * n if isinstance(ts, datetime) else list(ts)
    if len(stamps) != n:
        raise StorageError(f"ts has {len(stamps)} values for {n} predictions: pass one per row")
    for i, t in enumerate(stamps):
        if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
            raise StorageError(
                f"ts[{i}] is {t!r}: pass time-zone aware datetimes (datetime.now(timezone.utc))"
            )
    return pa.array(stamps, TS_TYPE)


def optional_array(values: Sequence | None, n: int, name: str, kind: type) -> pa.Array:
    arrow_type = pa.binary() if kind is bytes else pa.string()
    if values is None:
        return pa.nulls(n, arrow_type)
    values = list(values)
    if len(values) != n:
        raise StorageError(f"{name} has {len(values)} values for {n} predictions: pass one per row")
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, kind):
            raise StorageError(
                f"{name}[{i}] is {type(v).__name__}: expected {kind.__name__} or None"
            )
    return pa.array(values, arrow_type)


def attrs_array(attrs: Sequence[Mapping[str, str]] | None, n: int) -> pa.Array:
    if attrs is None:
        return pa.nulls(n, ATTRS_TYPE)
    attrs = list(attrs)
    if len(attrs) != n:
        raise StorageError(f"attrs has {len(attrs)} values for {n} predictions: pass one per row")
    rows = []
    for i, a in enumerate(attrs):
        if a is None:
            rows.append(None)
            continue
        for k, v in a.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise StorageError(
                    f"attrs[{i}][{k!r}] is {type(v).__name__}: attrs keys and values must be "
                    "strings (slice attributes like device='scanner-b')"
                )
        rows.append(list(a.items()))
    return pa.array(rows, ATTRS_TYPE)
