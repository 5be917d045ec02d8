"""The logs on object storage (S3 or an S3-compatible server): where a part lives when
`[storage] logs_url = "s3://bucket/prefix"`.

Why the parts layer needs so little here: an object PUT is atomic (a reader lists and reads
the whole object or nothing; a writer killed mid-upload leaves no object, at most an
unfinished multipart upload that no listing shows), and every part has a unique name, so
concurrent writers never overwrite each other. What the local disk needs (a temporary name,
fsync, rename, directory fsync) is one request here. A part is serialised in memory first,
then named (the name's time stamp is taken after serialising, as `write_part` takes it
after writing and before renaming), then PUT once.

The client is s3fs (fsspec; DuckDB 2.0's wheel has no httpfs offline, so DuckDB itself
cannot reach S3 here: `../shared/FIELD-NOTES.md`). Credentials
come from the environment or the instance profile as boto reads them (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` ...): never from loopwright.toml, and never printed.
`[storage] endpoint_url` points at an S3-compatible server (moto, MinIO, Ceph ...).
Listings are never cached: a reader must see a part the moment it exists.

Readers query local copies of the parts (`local_copies`), not the objects: DuckDB reading
through a Python fsspec filesystem issues many small ranged reads per file under the GIL,
and a curation query over 300 parts took 60 s on the moto server against 0.2 s on the disk
(bench/RESULTS.md "Logs on object storage"). A part never changes once visible (unique
name, one PUT), so a copy keyed by its URL and size is never stale: each part is downloaded
once per machine (many at a time), into `<home>/.objects-cache/` mirroring the bucket's
layout, so that the hive `date=` folder and the name order readers rely on stay the same.
The listing stays fresh on every query.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

SCHEME = "s3://"
_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def check_logs_url(url: str) -> str | None:
    """What is wrong with `[storage] logs_url` (None if fine): "" or s3://bucket[/prefix]."""
    if url == "":
        return None
    if not url.startswith(SCHEME):
        return (
            f"storage.logs_url = {url!r} is not an object-storage URL: use "
            "'s3://bucket/prefix' (or '' to keep the logs in the local data home)"
        )
    bucket = url[len(SCHEME) :].split("/", 1)[0]
    if not 3 <= len(bucket) <= 63 or not all(c in _BUCKET_CHARS for c in bucket):
        return (
            f"storage.logs_url = {url!r}: the bucket name {bucket!r} is not valid "
            "(3-63 lowercase letters, digits, '-' or '.'), e.g. 's3://loopwright-logs/prod'"
        )
    return None


_FS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _filesystem(endpoint_url: str):
    try:
        import s3fs  # only a home with logs on object storage needs it
    except ImportError as err:
        raise ImportError(
            "storage.logs_url is an s3:// URL but s3fs is not installed: "
            "pip install 'loopwright[s3]' (or s3fs)"
        ) from err

    kwargs = {"use_listings_cache": False, "skip_instance_cache": True}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return s3fs.S3FileSystem(**kwargs)


def filesystem(endpoint_url: str = ""):
    """The s3fs filesystem for `endpoint_url` ("" = AWS), one per process and endpoint."""
    with _FS_LOCK:
        return _filesystem(endpoint_url)


@dataclass(frozen=True)
class ObjectFolder:
    """A "folder" (key prefix) on object storage, used where the parts layer takes a Path:
    `folder / "date=2026-12-01"`, `.name`, `str(folder)` = its s3:// URL."""

    url: str
    endpoint_url: str = ""
    cache_dir: str = ""  # where readers keep local copies of parts ("" = none yet)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))

    def __truediv__(self, name: str) -> ObjectFolder:
        return ObjectFolder(f"{self.url}/{name}", self.endpoint_url, self.cache_dir)

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectFolder:
        return ObjectFolder(self.url.rsplit("/", 1)[0], self.endpoint_url, self.cache_dir)

    @property
    def key(self) -> str:
        """bucket/prefix, as s3fs names it."""
        return self.url[len(SCHEME) :]

    @property
    def fs(self):
        return filesystem(self.endpoint_url)

    def put(self, data: bytes) -> None:
        """One PUT: the object appears whole or not at all."""
        self.fs.pipe_file(self.key, data)

    def find(self) -> dict[str, dict]:
        """Every object under this prefix: s3:// URL -> s3fs info (size, ETag, ...)."""
        try:
            found = self.fs.find(self.key, detail=True)
        except FileNotFoundError:
            return {}
        return {SCHEME + k: v for k, v in found.items() if v.get("type", "file") == "file"}

    def delete(self) -> None:
        self.fs.rm_file(self.key)


DOWNLOAD_BATCH = 64  # parts fetched concurrently per request burst (s3fs `cat`)


def local_copies(parts: list[ObjectFolder], sizes: dict[str, int]) -> list[str]:
    """Local paths of `parts` (same order), downloading those not copied yet: each with its
    listed size (`sizes`: URL -> bytes) checked, written under a temporary name and renamed,
    so concurrent readers on one machine never see a half-written copy."""
    if not parts:
        return []
    cache = Path(parts[0].cache_dir)
    if not parts[0].cache_dir:
        raise ValueError("object folder has no cache_dir: build it through DataHome")
    local = [cache / p.key for p in parts]
    missing = [
        (p, path)
        for p, path in zip(parts, local, strict=True)
        if not _is_copy(path, sizes.get(p.url))
    ]
    fs = parts[0].fs if missing else None
    got_now: set[Path] = set()
    for start in range(0, len(missing), DOWNLOAD_BATCH):
        chunk = missing[start : start + DOWNLOAD_BATCH]
        got = fs.cat([p.key for p, _ in chunk], on_error="omit")
        for p, path in chunk:
            data = got.get(p.key)
            if data is None:
                continue  # gone since the listing: the query runs on what is there
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            got_now.add(path)
    absent = {path for _, path in missing}.difference(got_now)  # gone since the listing
    return [str(path) for path in local if path not in absent]


def _is_copy(path: Path, size: int | None) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return size is None or st.st_size == size
