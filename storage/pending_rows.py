"""The buffer of `BufferedPredictionLog` (`storage/buffered_log.py`): rows queued by `log()`,
swapped out whole for a write, put back in front of newer rows when a write fails, and
turned into one contract-schema table by the writer thread.

A mixin: the caller holds the log's lock around `_reset`, `_take` and `_put_back`, and
provides `model_version`, `role` and `_class_names` for `_table`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.columns import attrs_array, vector_array
from storage.prediction_log import uncertainty
from storage.schemas import PREDICTION_SCHEMA, TS_TYPE

_SLICE = 1024  # rows (or logged arrays) converted per step while holding the GIL


def _yielding(convert, n: int) -> list:
    """`convert(start, stop)` over slices of `_SLICE`, letting other threads (the request
    path) take the GIL between slices: one conversion of 20,000 small arrays in a single call
    would hold it for milliseconds."""
    out = []
    for start in range(0, n, _SLICE):
        out.append(convert(start, min(start + _SLICE, n)))
        time.sleep(0)
    return out


class PendingRows:
    """The rows logged and not written yet; see the module docstring."""

    def _reset(self) -> None:
        self._ids: list[str] = []
        self._ts: list[np.ndarray] = []
        self._features: list[np.ndarray] = []
        self._probs: list[np.ndarray] = []
        self._inputs: list[bytes | None] | None = None
        self._attrs: list[Mapping[str, str] | None] | None = None
        self._pending = 0

    def _take(self) -> dict | None:
        """Swap the buffer out (caller holds the lock)."""
        if self._pending == 0:
            return None
        taken = {
            "ids": self._ids, "ts": self._ts, "features": self._features,
            "probs": self._probs, "inputs": self._inputs, "attrs": self._attrs,
        }  # fmt: skip
        self._reset()
        return taken

    def _put_back(self, taken: dict) -> None:
        """A failed write: its rows go back in front of newer ones (caller holds the lock)."""
        newer = self._take()
        self._ids, self._ts = taken["ids"], taken["ts"]
        self._features, self._probs = taken["features"], taken["probs"]
        self._inputs, self._attrs = taken["inputs"], taken["attrs"]
        self._pending = len(self._ids)
        if newer is not None:
            n_old, n_new = len(taken["ids"]), len(newer["ids"])
            self._ids += newer["ids"]
            self._ts += newer["ts"]
            self._features += newer["features"]
            self._probs += newer["probs"]
            if self._inputs is not None or newer["inputs"] is not None:
                self._inputs = (self._inputs or [None] * n_old) + (
                    newer["inputs"] or [None] * n_new
                )
            if self._attrs is not None or newer["attrs"] is not None:
                self._attrs = (self._attrs or [None] * n_old) + (newer["attrs"] or [None] * n_new)
            self._pending += n_new

    def _table(self, taken: dict) -> pa.Table:
        ids = _yielding(lambda a, b: pa.array(taken["ids"][a:b], pa.string()), len(taken["ids"]))
        ids = pa.concat_arrays(ids)
        keep = None
        # the same id logged twice: first wins (unique is ~3x faster than count_distinct)
        if len(pc.unique(ids)) != len(ids):
            first: dict[str, int] = {}
            for i, r in enumerate(taken["ids"]):
                first.setdefault(r, i)
            keep = np.fromiter(sorted(first.values()), np.int64)
            ids = ids.take(pa.array(keep))
        parts = len(taken["features"])
        x = np.concatenate(_yielding(lambda a, b: np.concatenate(taken["features"][a:b]), parts))
        p = np.concatenate(_yielding(lambda a, b: np.concatenate(taken["probs"][a:b]), parts))
        ts = np.concatenate(_yielding(lambda a, b: np.concatenate(taken["ts"][a:b]), parts))
        inputs, attrs = taken["inputs"], taken["attrs"]
        if keep is not None:
            x, p, ts = x[keep], p[keep], ts[keep]
            inputs = None if inputs is None else [inputs[i] for i in keep]
            attrs = None if attrs is None else [attrs[i] for i in keep]
        n = len(ts)
        top, confidence, margin, entropy = uncertainty(p)
        columns = [
            ids,
            pa.array(ts, pa.int64()).cast(TS_TYPE),
            pa.repeat(pa.scalar(self.model_version, pa.string()), n),
            pa.repeat(pa.scalar(self.role, pa.string()), n),
            vector_array(x),
            pa.nulls(n, pa.binary()) if inputs is None else pa.array(inputs, pa.binary()),
            pa.nulls(n, pa.string()),
            vector_array(p),
            pc.take(self._class_names, pa.array(top)),
            pa.array(confidence, pa.float32()),
            pa.array(margin, pa.float32()),
            pa.array(entropy, pa.float32()),
            attrs_array(attrs, n),
        ]
        return pa.Table.from_arrays(columns, schema=PREDICTION_SCHEMA)
