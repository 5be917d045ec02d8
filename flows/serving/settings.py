"""`[serving]`: how `loopwright serve-model` listens, logs and bounds its work.

Why the section is this dataclass: the server and `loopwright.toml` read the same fields with
the same defaults and range checks (as `[curation]` is `curation.rules.CurationRules`), so a
value the file accepts is one the server can run with.
"""

from __future__ import annotations

from dataclasses import dataclass

DURABILITY = ("ack", "async")


@dataclass(frozen=True)
class ServingConfig:
    """The `[serving]` section (loopwright.toml says what each key means)."""

    # ack: answer only once the prediction rows are durable (group commit);
    # async: answer at once, rows written in the background (the loss window is
    # async_flush_ms of predictions, see docs/reliability.md "Serving")
    durability: str = "ack"
    host: str = "127.0.0.1"
    port: int = 8080
    max_instances: int = 256  # instances per /v1/predict request; more is a 422
    group_commit_rows: int = 512  # ack: write a group as soon as this many rows wait...
    group_commit_ms: float = 2.0  # ...or when the oldest has waited this long
    async_flush_rows: int = 5000  # async: write a part every this many rows...
    async_flush_ms: int = 1000  # ...or this often (the most a kill -9 loses)
    shadow_queue: int = 10000  # shadow instances waiting to be scored; beyond: dropped, counted
    stats_samples: int = 50000  # recent (ts, version, latency, ok) kept for /v1/stats

    def __post_init__(self) -> None:
        if self.durability not in DURABILITY:
            raise ValueError(
                f"[serving] durability = {self.durability!r} is not one of {list(DURABILITY)}: "
                'use "ack" (answer once logged) or "async" (answer at once, log buffered)'
            )
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(
                f"[serving] host = {self.host!r}: use an address to listen on, e.g. 127.0.0.1"
            )
        _whole("port", self.port, 1, "use a TCP port in 1..65535, e.g. 8080", maximum=65535)
        _whole("max_instances", self.max_instances, 1, "use 1 or more, e.g. 256")
        _whole("group_commit_rows", self.group_commit_rows, 1, "use 1 or more rows, e.g. 512")
        ms = self.group_commit_ms
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms <= 1000:
            raise ValueError(
                f"[serving] group_commit_ms = {ms!r} must lie between 0 and 1000: it is added "
                "to an acknowledged request's latency at most; use e.g. 2"
            )
        _whole("async_flush_rows", self.async_flush_rows, 1, "use 1 or more rows, e.g. 5000")
        _whole("async_flush_ms", self.async_flush_ms, 1, "use 1 or more milliseconds, e.g. 1000")
        _whole("shadow_queue", self.shadow_queue, 1, "use 1 or more instances, e.g. 10000")
        _whole("stats_samples", self.stats_samples, 100, "use 100 or more, e.g. 50000")


def _whole(key: str, value: object, minimum: int, fix: str, maximum: int | None = None) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int) or value < minimum
    if bad or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"[serving] {key} = {value!r} must be a whole number {bound}: {fix}")
