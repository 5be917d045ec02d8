"""Decoded model inputs, kept by a `Loop` so that an input is decoded once, not at every stage.

Why: a loop decodes the same stored inputs again and again: `score` decodes a batch, each
`retrain` decodes every labeled row twice (the fit, the report card), the drift check decodes
its window's sample at every batch. For digits that was ~15 s of a 45 s benchmark job.

Why it is safe: an input is bytes, and the task's `decode_inputs` is a pure function of
each item (row i of its result depends on item i alone), so the rows decoded earlier are
the rows decoding gives now, bit for bit; the cache is keyed by the bytes themselves, so
no question of which copy of a request id was logged arises. Bounded: beyond `max_bytes`
of decoded arrays the oldest entries go (first in, first out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: decoded arrays a loop keeps at most (digits: ~256 bytes a row, so ~250k rows)
MAX_BYTES = 64 * 1024 * 1024


class DecodedInputs:
    """`decode(items)` = `decode_inputs(items)`, each distinct item decoded once (see module)."""

    def __init__(
        self, decode_inputs: Callable[[Sequence[bytes]], np.ndarray], max_bytes: int = MAX_BYTES
    ) -> None:
        self._decode = decode_inputs
        self.max_bytes = int(max_bytes)
        self._rows: dict[bytes, np.ndarray] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def decode(self, items: Sequence[bytes]) -> np.ndarray:
        """Model inputs (N, *input_shape) for `items`, as `decode_inputs(items)` gives them.

        Errors are the task's own: when a new item fails, the whole list is decoded again
        by the task, so the message names the item's position in `items`."""
        items = list(items)
        if not items:
            return self._decode(items)
        rows = self._rows
        missing = list(dict.fromkeys(b for b in items if b not in rows))
        got: dict[bytes, np.ndarray] = {}
        if missing:
            try:
                fresh = np.asarray(self._decode(missing))
            except ValueError:
                self._decode(items)  # the task's error, positions as the caller knows them
                raise
            if fresh.shape[0] != len(missing):
                return self._decode(items)  # not one row per item: no cache for this task
            got = {item: row.copy() for item, row in zip(missing, fresh, strict=True)}
        self.misses += len(missing)
        self.hits += len(items) - len(missing)
        out = np.stack([got[b] if b in got else rows[b] for b in items])
        for item, row in got.items():  # after the stack: an eviction cannot lose a row of it
            self._keep(item, row)
        return out

    def _keep(self, item: bytes, row: np.ndarray) -> None:
        row.setflags(write=False)  # shared by every later caller: nobody may change it
        self._rows[item] = row
        self._bytes += row.nbytes
        while self._bytes > self.max_bytes and self._rows:
            oldest = next(iter(self._rows))
            self._bytes -= self._rows.pop(oldest).nbytes
