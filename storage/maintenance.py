"""Housekeeping of a data home: what writers killed mid-write left behind.

Why its own module: cleaning touches every writer's temp files (log parts, model folders of
registrations in progress), so it knows each writer's temp-name rule; the data home (a layout
of paths) and the registry (versions and aliases) then need not know each other. Readers never
see these files; cleaning only frees the disk. `DataHome.ensure` calls `clean_home` on every
open.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Protocol

from storage.parquet_parts import _pid_alive, clean_leftovers

# `.tmp-<pid>-<hex>`: a model registration in progress; its pid tells whether its writer lives
MODEL_TMP_RE = re.compile(r"^\.tmp-(\d+)-[0-9a-f]{32}\Z")
# `.<part name>.<pid>-<hex8>.tmp`: a reader's local copy of an object being written
# (`storage.objects.local_copies`)
COPY_TMP_RE = re.compile(r"^\..+\.parquet\.(\d+)-[0-9a-f]{8}\.tmp\Z")


class Layout(Protocol):
    """The folders of a data home that writers put temp files in (`storage.home.DataHome`)."""

    @property
    def predictions(self) -> Path: ...
    @property
    def labels(self) -> Path: ...
    @property
    def queue(self) -> Path: ...
    @property
    def seed(self) -> Path: ...
    @property
    def models(self) -> Path: ...


def clean_models(models: Path) -> int:
    """Remove temp folders of model registrations whose process died; return how many.

    They were never visible as versions (`Registry.versions()` ignores them).
    """
    if not models.is_dir():
        return 0
    removed = 0
    for path in models.iterdir():
        m = MODEL_TMP_RE.match(path.name)
        if m and not _pid_alive(int(m[1])):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def clean_copies(cache: Path) -> int:
    """Remove half-written local copies of objects whose reader process died; return how many."""
    removed = 0
    for path in cache.rglob("*.tmp") if cache.is_dir() else ():
        m = COPY_TMP_RE.match(path.name)
        if m and not _pid_alive(int(m[1])):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def clean_home(home: Layout) -> int:
    """Remove the temp parts of dead log writers, the temp folders of dead registrations and
    the half-written object copies of dead readers in `home`; return how many."""
    logs = (home.predictions, home.labels, home.queue, home.seed)
    removed = sum(clean_leftovers(folder) for folder in logs) + clean_models(home.models)
    cache = getattr(home.predictions, "cache_dir", "")  # logs on object storage only
    return removed + (clean_copies(Path(cache)) if cache else 0)
