"""Logging from a serving loop without slowing it: check and queue on the request path,
write Parquet parts from a background thread.

Why: `PredictionLog.append` writes (and fsyncs) one part per call, a few milliseconds even
for one row; a server calling it per request pays that on every prediction. Here `log()`
validates the rows (the same checks as `make_batch`: ids, finite features, probabilities)
and appends NumPy arrays to a buffer, in microseconds; a thread turns the buffer into one
contract-schema table every `flush_rows` rows or `flush_seconds` and writes it with
`write_partitioned` (atomic parts, partitioned by UTC date). `close()` (or leaving the
`with` block) writes whatever is pending; errors of the writer thread are raised by the
next `log()`, `flush()` or `close()`, never swallowed. The buffer itself is
`storage/pending_rows.py`.

>>> import tempfile, pathlib
>>> from storage.queries import Queries
>>> home = DataHome(pathlib.Path(tempfile.mkdtemp()) / "home")
>>> with BufferedPredictionLog(home, classes=["a", "b"], model_version="v0001") as blog:
...     blog.log("r1", np.zeros((1, 3)), np.array([[0.8, 0.2]]))
>>> Queries(home).count_predictions()
1
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa

from storage.batch_checks import ROLES, check_features, check_probs
from storage.home import DataHome, StorageError
from storage.parquet_parts import write_partitioned
from storage.pending_rows import PendingRows
from storage.prediction_log import PREDICTION_LAYOUT
from storage.schemas import TS_TYPE

__all__ = ["BufferedPredictionLog"]


def _now_us() -> int:
    return time.time_ns() // 1000


def _ts_us(ts, n: int) -> np.ndarray:
    """Microseconds since the epoch (UTC): now, one aware datetime, one per row, or a
    time-zone aware Arrow timestamp array (vectorised, for bulk logging)."""
    if ts is None:
        return np.full(n, _now_us(), np.int64)
    if isinstance(ts, pa.ChunkedArray | pa.Array):
        if not pa.types.is_timestamp(ts.type) or ts.type.tz is None or ts.null_count:
            raise StorageError(
                f"ts has type {ts.type}: pass a time-zone aware timestamp array without nulls"
            )
        out = ts.cast(TS_TYPE).cast(pa.int64()).to_numpy()
    else:
        stamps = [ts] * n if isinstance(ts, datetime) else list(ts)
        for i, t in enumerate(stamps):
            if not isinstance(t, datetime) or t.utcoffset() is None:
                raise StorageError(
                    f"ts[{i}] is {t!r}: pass time-zone aware datetimes (datetime.now(timezone.utc))"
                )
        out = np.fromiter((int(t.timestamp() * 1_000_000) for t in stamps), np.int64, len(stamps))
    if len(out) != n:
        raise StorageError(f"ts has {len(out)} values for {n} predictions: pass one per row")
    return out


class BufferedPredictionLog(PendingRows):
    """`log()` per request; parts written in the background. Use as a context manager, or
    call `close()`: it writes what is pending (also run at interpreter exit)."""

    def __init__(
        self,
        home: DataHome,
        classes: Sequence[str],
        model_version: str,
        role: str = "champion",
        flush_rows: int = 5_000,
        flush_seconds: float = 1.0,
        max_pending_rows: int = 1_000_000,
    ) -> None:
        self.classes = [str(c) for c in classes]
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise StorageError(f"classes {self.classes}: pass at least 2 distinct class names")
        if not isinstance(model_version, str) or not model_version:
            raise StorageError("model_version is empty: pass the registry version that predicts")
        if role not in ROLES:
            raise StorageError(f"role {role!r} is not one of {list(ROLES)}: pass the serving role")
        if flush_rows < 1 or flush_seconds <= 0 or max_pending_rows < flush_rows:
            raise StorageError(
                f"flush_rows={flush_rows}, flush_seconds={flush_seconds}, max_pending_rows="
                f"{max_pending_rows}: need flush_rows >= 1, flush_seconds > 0 and "
                "max_pending_rows >= flush_rows"
            )
        self.home, self.model_version, self.role = home, model_version, role
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.max_pending_rows = max_pending_rows
        self._class_names = pa.array(self.classes, pa.string())
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._write_lock = threading.Lock()  # one writer at a time (thread or flush())
        self._reset()
        self._n_features: int | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.rows_written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda s: s is not None and s.close())(ref())
        atexit.register(self._atexit)

    # ----------------------------------------------------------------- request path
    def log(
        self,
        request_ids: str | Sequence[str],
        features: np.ndarray,
        probs: np.ndarray,
        ts: datetime | Sequence[datetime] | pa.Array | None = None,
        inputs: Sequence[bytes | None] | None = None,
        attrs: Sequence[Mapping[str, str] | None] | None = None,
    ) -> None:
        """Check one or more predictions and queue them; returns before anything is written.

        Raises `StorageError` naming the field for bad rows, and re-raises a failure of the
        background writer (the rows it could not write stay pending for `flush()`).
        """
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        n = len(ids)
        if n == 0:
            raise StorageError("request_ids is empty: log at least one prediction")
        for r in ids:
            if not isinstance(r, str) or not r.strip():
                raise StorageError(f"request_id {r!r} must be a non-empty string")
        x = np.asarray(features, dtype=np.float32)
        p = np.asarray(probs, dtype=np.float64)  # uncertainty as make_batch computes it
        if x.ndim == 1 and n == 1:
            x = x[None, :]
        if p.ndim == 1 and n == 1:
            p = p[None, :]
        for name, m in (("features", x), ("probs", p)):
            if m.ndim != 2 or m.shape[0] != n:
                raise StorageError(
                    f"{name} has shape {m.shape} for {n} request_ids: pass one row per prediction"
                )
        check_features(x)
        check_probs(p, len(self.classes))
        stamps = _ts_us(ts, n)
        if inputs is not None and len(inputs) != n:
            raise StorageError(f"inputs has {len(inputs)} values for {n} predictions")
        if attrs is not None and len(attrs) != n:
            raise StorageError(f"attrs has {len(attrs)} values for {n} predictions")
        with self._lock:
            self._raise_error()
            if self._closed:
                raise StorageError("the log is closed: open a new BufferedPredictionLog")
            if self._n_features is None:
                self._n_features = x.shape[1]
            elif x.shape[1] != self._n_features:
                raise StorageError(
                    f"features has {x.shape[1]} columns, earlier rows had {self._n_features}: "
                    "log vectors from the same task.features"
                )
            while self._pending + n > self.max_pending_rows and self._thread.is_alive():
                self._wake.notify()  # the writer is behind: wait rather than grow without bound
                self._wake.wait(0.05)
                self._raise_error()
            before = self._pending
            self._ids.extend(ids)
            self._ts.append(stamps)
            self._features.append(x)
            self._probs.append(p)
            if inputs is not None or self._inputs is not None:
                self._inputs = self._inputs or [None] * before
                self._inputs.extend(inputs if inputs is not None else [None] * n)
            if attrs is not None or self._attrs is not None:
                self._attrs = self._attrs or [None] * before
                self._attrs.extend(attrs if attrs is not None else [None] * n)
            self._pending += n
            if self._pending >= self.flush_rows:
                self._wake.notify()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise StorageError(
                f"the prediction-log writer failed ({error!r}); the rows stay pending: fix the "
                "cause (disk space, permissions) and call flush()"
            ) from error

    # ------------------------------------------------------------------- writer side
    def _write(self) -> int:
        with self._write_lock:
            with self._lock:
                taken = self._take()
            if taken is None:
                return 0
            try:
                table = self._table(taken)
                write_partitioned(table, self.home.predictions, "ts", PREDICTION_LAYOUT)
            except BaseException:
                with self._lock:
                    self._put_back(taken)
                raise
            self.rows_written += table.num_rows
            return table.num_rows

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._pending < self.flush_rows and not self._closed:
                    self._wake.wait(self.flush_seconds)
                if self._closed:
                    return
            try:
                self._write()
            except Exception as e:  # surfaced by the next log()/flush()/close()
                with self._lock:
                    self._error = e
                    self._wake.notify_all()
                time.sleep(self.flush_seconds)
            with self._lock:
                self._wake.notify_all()  # wake a log() waiting for room

    # ---------------------------------------------------------------------- control
    def flush(self) -> int:
        """Write everything pending now, in this thread; return the rows written."""
        with self._lock:
            self._error = None  # retrying is the point of flush()
        return self._write()

    def close(self) -> int:
        """Stop the writer thread and write what is pending; idempotent."""
        with self._lock:
            if self._closed and self._pending == 0:
                return 0
            self._closed = True
            self._wake.notify_all()
        self._thread.join()
        atexit.unregister(self._atexit)
        return self.flush()

    @property
    def pending_rows(self) -> int:
        return self._pending

    def __enter__(self) -> BufferedPredictionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
