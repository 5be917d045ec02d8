"""Storage: the prediction and label logs (Parquet), DuckDB queries over them, dataset
versions, the model registry and the data home layout. Importing it touches no file."""

from storage.datasets import DatasetVersion, create_dataset, list_datasets, load_dataset, split_of
from storage.home import DataHome, StorageError
from storage.label_log import LABEL_SCHEMA, SOURCES, LabelEvent, LabelLog
from storage.parquet_parts import clean_leftovers, write_part, write_partitioned
from storage.prediction_log import (
    PREDICTION_SCHEMA,
    ROLES,
    PredictionLog,
    make_batch,
    validate_batch,
)
from storage.queries import Queries
from storage.queue_log import QUEUE_SCHEMA, REASONS, QueueLog
from storage.registry import ALIASES, ANY, AliasConflict, Registry
from storage.seed import SEED_SCHEMA, write_seed
from storage.state import append_event, read_events, read_state, write_state

__all__ = [
    "ALIASES",
    "ANY",
    "LABEL_SCHEMA",
    "PREDICTION_SCHEMA",
    "QUEUE_SCHEMA",
    "REASONS",
    "ROLES",
    "SEED_SCHEMA",
    "SOURCES",
    "AliasConflict",
    "DataHome",
    "DatasetVersion",
    "LabelEvent",
    "LabelLog",
    "PredictionLog",
    "Queries",
    "QueueLog",
    "Registry",
    "StorageError",
    "append_event",
    "clean_leftovers",
    "create_dataset",
    "list_datasets",
    "load_dataset",
    "make_batch",
    "read_events",
    "read_state",
    "split_of",
    "validate_batch",
    "write_part",
    "write_partitioned",
    "write_seed",
    "write_state",
]
