"""Arrow schemas of the logs in one place, so writers and the DuckDB readers cannot drift apart.

Each log module re-exports its own schema (`storage.prediction_log.PREDICTION_SCHEMA`...);
this module exists only so that `queries.py` can build empty tables without import cycles.
"""

from __future__ import annotations

import pyarrow as pa

TS_TYPE = pa.timestamp("us", tz="UTC")
VECTOR_TYPE = pa.list_(pa.float32())
ATTRS_TYPE = pa.map_(pa.string(), pa.string())

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE),
        pa.field("model_version", pa.string()),
        pa.field("role", pa.string()),
        pa.field("features", VECTOR_TYPE),
        pa.field("input", pa.binary()),
        pa.field("input_uri", pa.string()),
        pa.field("probs", VECTOR_TYPE),
        pa.field("pred", pa.string()),
        pa.field("confidence", pa.float32()),
        pa.field("margin", pa.float32()),
        pa.field("entropy", pa.float32()),
        pa.field("attrs", ATTRS_TYPE),
    ]
)

LABEL_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("annotator", pa.string()),
        pa.field("ts", TS_TYPE),
        pa.field("ls_task_id", pa.int64()),
        pa.field("ls_annotation_id", pa.int64()),
    ]
)

QUEUE_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("score", pa.float32()),
        pa.field("ls_task_id", pa.int64()),
        pa.field("ts", TS_TYPE),
    ]
)

SEED_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE),
        pa.field("features", VECTOR_TYPE),
        pa.field("input", pa.binary()),
        pa.field("attrs", ATTRS_TYPE),
    ]
)
