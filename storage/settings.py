"""`[storage]`: how hard the log's readers may lean on the machine, and how the log compacts.

Storage owns these rules; `flows/config.py` reads them from `loopwright.toml` (section
`[storage]`, overrides `LOOPWRIGHT_STORAGE__<KEY>`) and hands them to `Queries` and
`compact_log`. The defaults suit a laptop or a small VM: a reader query holds at most about
`memory_limit_mb` in DuckDB (more spills to disk), whatever the size of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.objects import check_logs_url

MIN_MEMORY_MB = 64


@dataclass(frozen=True)
class StorageSettings:
    # DuckDB memory limit of each reader connection; beyond it, joins, sorts and aggregates
    # spill to `spill_dir`. Without it DuckDB takes up to 80 % of RAM per connection.
    memory_limit_mb: int = 1024
    threads: int = 2  # DuckDB threads per connection (0 = one per core)
    spill_dir: str = ""  # where DuckDB spills ("" = the system temp folder)
    compact_target_mb: int = 128  # compaction writes files of about this size
    compact_min_parts: int = 8  # merge a run of small parts with this many (or the target size)
    compact_min_age_s: int = 60  # parts younger than this wait for the next compaction
    compact_grace_s: int = 600  # merged parts are deleted this long after the merged file appeared
    # the append-only logs on object storage ("" = in the data home's folder): "s3://bucket/prefix"
    logs_url: str = ""
    endpoint_url: str = ""  # an S3-compatible server, e.g. "http://127.0.0.1:9000" ("" = AWS)

    @property
    def target_bytes(self) -> int:
        return int(self.compact_target_mb) * 1024 * 1024

    def problems(self) -> list[str]:
        """What is wrong with these settings, each naming the key and the fix ([] if fine)."""
        out = []
        if self.memory_limit_mb < MIN_MEMORY_MB:
            out.append(
                f"storage.memory_limit_mb = {self.memory_limit_mb} is below {MIN_MEMORY_MB}: "
                "DuckDB needs working memory; use e.g. 512 or 1024"
            )
        if self.threads < 0:
            out.append(f"storage.threads = {self.threads}: use 0 (one per core) or more")
        if self.compact_target_mb < 1:
            out.append(
                f"storage.compact_target_mb = {self.compact_target_mb}: use 1 or more, e.g. 128"
            )
        if self.compact_min_parts < 2:
            out.append(
                f"storage.compact_min_parts = {self.compact_min_parts}: use 2 or more "
                "(merging one file into one file gains nothing)"
            )
        for key in ("compact_min_age_s", "compact_grace_s"):
            if getattr(self, key) < 0:
                out.append(f"storage.{key} = {getattr(self, key)}: use 0 or more seconds")
        logs = check_logs_url(self.logs_url)
        if logs:
            out.append(logs)
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            out.append(
                f"storage.endpoint_url = {self.endpoint_url!r}: use a URL such as "
                "'http://127.0.0.1:9000' (or '' for AWS)"
            )
        if self.endpoint_url and not self.logs_url:
            out.append(
                "storage.endpoint_url is set but storage.logs_url is '': set logs_url = "
                "'s3://bucket/prefix' to put the logs there, or remove endpoint_url"
            )
        return out
