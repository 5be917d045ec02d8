"""Where served predictions go: the prediction log, acknowledged (group commit) or buffered.

Why two sinks behind one `submit`: `[serving] durability = "ack"` answers a request only
once its rows are durable, so `AckSink.submit` returns a future the request awaits; many
concurrent requests' rows become one fsynced part file (`storage.group_commit`), and the
table is built once per group in the writer thread (`make_batch` costs ~2 ms whatever the
row count, so once per request would cap a server at a few hundred requests per second).
`"async"` hands rows to `BufferedPredictionLog` (one per version and role) and returns at
once: a crash loses what was not yet flushed (`async_flush_ms`, docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from storage.buffered_log import BufferedPredictionLog
from storage.group_commit import GroupCommit
from storage.home import DataHome
from storage.parquet_parts import write_partitioned
from storage.prediction_log import PREDICTION_LAYOUT, make_batch


@dataclass(frozen=True)
class Scored:
    """Rows of one version and role from one request (or one shadow pass)."""

    request_ids: list[str]
    model_version: str
    role: str
    features: np.ndarray  # (n, F)
    probs: np.ndarray  # (n, C)
    inputs: list[bytes]
    attrs: list[dict[str, str]]
    ts: list[datetime]

    def __len__(self) -> int:
        return len(self.request_ids)


def rows_table(items: Sequence[Scored], classes: Sequence[str]) -> pa.Table:
    """One contract-schema table of many `Scored`: one `make_batch` per (version, role)."""
    groups: dict[tuple[str, str], list[Scored]] = {}
    for item in items:
        groups.setdefault((item.model_version, item.role), []).append(item)
    tables = []
    for (version, role), group in groups.items():
        tables.append(
            make_batch(
                request_ids=[r for s in group for r in s.request_ids],
                features=np.concatenate([s.features for s in group]),
                probs=np.concatenate([s.probs for s in group]),
                classes=classes,
                model_version=version,
                role=role,
                ts=[t for s in group for t in s.ts],
                inputs=[b for s in group for b in s.inputs],
                attrs=[a for s in group for a in s.attrs],
            )
        )
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


class AckSink:
    """`submit(scored)` -> a Future resolved once the rows are in a visible, fsynced part."""

    durability = "ack"

    def __init__(
        self, home: DataHome, classes: Sequence[str], max_rows: int, max_ms: float
    ) -> None:
        self.home, self.classes = home, [str(c) for c in classes]
        self.parts = 0
        self._gc: GroupCommit[Scored] = GroupCommit(
            self._write, max_rows=max_rows, max_ms=max_ms, name="prediction-log-group-commit"
        )

    def _write(self, items: list[Scored]) -> None:
        table = rows_table(items, self.classes)
        self.parts += len(write_partitioned(table, self.home.predictions, "ts", PREDICTION_LAYOUT))

    def submit(self, scored: Scored) -> Future:
        return self._gc.submit(scored, rows=len(scored))

    @property
    def groups(self) -> int:
        return self._gc.groups

    def close(self) -> None:
        self._gc.close()


class AsyncSink:
    """`submit(scored)` -> a resolved Future once the rows are queued (not yet durable)."""

    durability = "async"

    def __init__(
        self, home: DataHome, classes: Sequence[str], flush_rows: int, flush_ms: int
    ) -> None:
        self.home, self.classes = home, [str(c) for c in classes]
        self.flush_rows, self.flush_seconds = flush_rows, flush_ms / 1000.0
        self._logs: dict[tuple[str, str], BufferedPredictionLog] = {}

    def _log(self, version: str, role: str) -> BufferedPredictionLog:
        found = self._logs.get((version, role))
        if found is None:
            found = BufferedPredictionLog(
                self.home,
                self.classes,
                version,
                role,
                flush_rows=self.flush_rows,
                flush_seconds=self.flush_seconds,
                max_pending_rows=max(self.flush_rows, 100_000),
            )
            self._logs[(version, role)] = found
        return found

    def submit(self, scored: Scored) -> Future:
        future: Future = Future()
        try:
            self._log(scored.model_version, scored.role).log(
                scored.request_ids,
                scored.features,
                scored.probs,
                ts=scored.ts,
                inputs=scored.inputs,
                attrs=scored.attrs,
            )
        except Exception as exc:  # the writer failed earlier, or a bad row: the caller decides
            future.set_exception(exc)
        else:
            future.set_result(None)
        return future

    def close(self) -> None:
        for log in self._logs.values():
            log.close()


def open_sink(home: DataHome, classes: Sequence[str], serving) -> AckSink | AsyncSink:
    """The sink `[serving] durability` asks for."""
    if serving.durability == "ack":
        return AckSink(home, classes, serving.group_commit_rows, serving.group_commit_ms)
    return AsyncSink(home, classes, serving.async_flush_rows, serving.async_flush_ms)
