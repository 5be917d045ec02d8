"""The seed: clean labeled examples the first champion learns from. They never went through
production, so they are not in the prediction log; `labeled_examples` joins them in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from storage.batch_checks import check_features, check_request_ids
from storage.columns import attrs_array, vector_array
from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog, check_event
from storage.parquet_parts import write_part
from storage.queries import Queries
from storage.schemas import SEED_SCHEMA, TS_TYPE

__all__ = ["SEED_SCHEMA", "write_seed"]


def write_seed(
    home: DataHome,
    request_ids: Sequence[str],
    features: np.ndarray,
    inputs: Sequence[bytes],
    labels: Sequence[str],
    attrs: Sequence[Mapping[str, str]] | None = None,
    classes: Sequence[str] | None = None,
    ts: datetime | None = None,
) -> int:
    """Write seed examples and their labels (source "seed"); return rows written.

    Ids already in the seed are skipped, so running the set-up twice does not double it.
    `ts` stamps the rows and their label events (None: now). A simulation passes its
    logical time (before its first batch), so that the seed is older than any traffic and
    two runs of one scenario write identical rows.
    """
    ids = list(request_ids)
    n = len(ids)
    if n == 0:
        raise StorageError("seed is empty: pass at least one labeled example")
    features = np.asarray(features, dtype=np.float64)
    inputs, labels = list(inputs), list(labels)
    for name, size in (
        ("features", len(features)),
        ("inputs", len(inputs)),
        ("labels", len(labels)),
    ):
        if size != n:
            raise StorageError(f"{name} has {size} rows for {n} request_ids: pass one per example")
    check_request_ids(pa.array(ids, pa.string()))
    check_features(features)
    for i, raw in enumerate(inputs):
        if not isinstance(raw, bytes):
            raise StorageError(f"inputs[{i}] is {type(raw).__name__}: pass the encoded input bytes")
    if ts is not None and (not isinstance(ts, datetime) or ts.utcoffset() is None):
        raise StorageError(
            f"ts = {ts!r}: pass an aware datetime (e.g. datetime(2026, 1, 1, tzinfo=UTC)) or None"
        )
    now = datetime.now(UTC) if ts is None else ts.astimezone(UTC)
    events = [
        LabelEvent(r, lab, "seed", "seed", ts=now) for r, lab in zip(ids, labels, strict=True)
    ]
    for event in events:
        check_event(event, classes)
    attr_array = attrs_array(attrs, n)

    existing = Queries(home).seed_ids()
    keep = np.array([r not in existing for r in ids], dtype=bool)
    if not keep.any():
        return 0
    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array([now] * n, TS_TYPE),
            vector_array(features),
            pa.array(inputs, pa.binary()),
            attr_array,
        ],
        schema=SEED_SCHEMA,
    ).filter(pa.array(keep))
    write_part(table, home.seed)
    LabelLog(home).append([e for e, k in zip(events, keep, strict=True) if k], classes)
    return table.num_rows
