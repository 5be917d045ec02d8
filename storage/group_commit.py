"""Group commit: many callers' rows written as one durable write, each caller told when its
rows are durable.

Why: a server that answers only once a prediction is in the log (`[serving] durability =
"ack"`) cannot pay one fsynced Parquet part per request (~10 ms here) nor let parts pile up
by the thousand. Callers `submit` their rows and wait on the returned future; one writer
thread takes everything pending when `max_rows` rows are waiting or the oldest has waited
`max_ms`, hands it to `write` as one list (the prediction log writes it as one part file),
then resolves every future of that group: with None when `write` returned, with its
exception when it raised. A failed group fails its own callers only; the next group is
written as usual. While a write runs, new rows gather for the next one, so a slow disk makes
groups bigger rather than queues longer.

Nothing here knows about HTTP or Parquet: `write` is any callable.

>>> written = []
>>> with GroupCommit(written.append, max_rows=10, max_ms=1.0) as gc:
...     a, b = gc.submit("row-a"), gc.submit("row-b", rows=2)
...     a.result(timeout=5), b.result(timeout=5)
(None, None)
>>> sorted(x for group in written for x in group)
['row-a', 'row-b']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["GroupCommit", "GroupCommitClosed"]


class GroupCommitClosed(RuntimeError):
    """`submit` after `close()`: nothing more is accepted."""


class GroupCommit(Generic[T]):
    """`submit(item, rows)` -> Future resolved when `write([..., item, ...])` returned.

    `max_rows`: write as soon as this many rows wait; `max_ms`: or when the oldest pending
    item has waited this long (0: write whatever is pending at once). `max_pending_rows`
    bounds memory: a submit beyond it waits for the writer (back-pressure, not growth).
    """

    def __init__(
        self,
        write: Callable[[list[T]], object],
        max_rows: int = 512,
        max_ms: float = 2.0,
        max_pending_rows: int = 100_000,
        name: str = "group-commit",
    ) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows = {max_rows!r}: use a whole number >= 1, e.g. 512")
        if isinstance(max_ms, bool) or not isinstance(max_ms, int | float) or max_ms < 0:
            raise ValueError(f"max_ms = {max_ms!r}: use 0 or more milliseconds, e.g. 2")
        if max_pending_rows < max_rows:
            raise ValueError(
                f"max_pending_rows = {max_pending_rows} < max_rows = {max_rows}: "
                "allow at least one full group to wait"
            )
        self._write = write
        self.max_rows, self.max_seconds = max_rows, max_ms / 1000.0
        self.max_pending_rows = max_pending_rows
        self._cond = threading.Condition()
        self._items: list[T] = []
        self._futures: list[Future] = []
        self._rows = 0
        self._first_at = 0.0  # monotonic time the oldest pending item arrived
        self._closed = False
        self.groups = 0  # groups written (or failed): for tests and /metrics
        self.failed_groups = 0
        self.rows_written = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers
    def submit(self, item: T, rows: int = 1) -> Future:
        """Queue `item` (worth `rows` rows) for the next group; the future resolves once it
        is written (None) or its group failed (the writer's exception)."""
        future: Future = Future()
        with self._cond:
            while not self._closed and self._rows and self._rows + rows > self.max_pending_rows:
                self._cond.wait(0.05)  # the writer is behind: wait for room
            if self._closed:
                raise GroupCommitClosed("the log writer is closed: nothing more is accepted")
            if not self._items:
                self._first_at = time.monotonic()
            self._items.append(item)
            self._futures.append(future)
            self._rows += rows
            self._cond.notify_all()
        return future

    @property
    def pending_rows(self) -> int:
        return self._rows

    # ------------------------------------------------------------------- writer
    def _take(self) -> tuple[list[T], list[Future], int] | None:
        """Wait for a group to be due; None when closed with nothing pending."""
        with self._cond:
            while True:
                if self._items:
                    due = self._first_at + self.max_seconds - time.monotonic()
                    if self._closed or self._rows >= self.max_rows or due <= 0:
                        break
                    self._cond.wait(due)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()
            taken = self._items, self._futures, self._rows
            self._items, self._futures, self._rows = [], [], 0
            self._cond.notify_all()  # submitters waiting for room
            return taken

    def _run(self) -> None:
        while (group := self._take()) is not None:
            items, futures, rows = group
            try:
                self._write(items)
            except BaseException as exc:  # every waiter of this group hears it
                self.failed_groups += 1
                for f in futures:
                    f.set_exception(exc)
            else:
                self.rows_written += rows
                for f in futures:
                    f.set_result(None)
            self.groups += 1

    # ------------------------------------------------------------------ control
    def close(self, timeout: float | None = None) -> None:
        """Write what is pending, then stop the writer; idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def __enter__(self) -> GroupCommit[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
