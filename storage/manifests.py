"""What every versioned manifest in the data home shares: its content hash and its next id.

Why one module: dataset versions (`ds-NNNN`) and eval set versions (`ev-NNNN`) are both JSON
manifests checked by a hash of their content and numbered by an O_EXCL claim file, so two
creators never share an id; one rule, written once, keeps the two stores alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def content_sha(manifest: Mapping[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON, without its own `sha256` key.

    >>> content_sha({"id": "ds-0001", "sha256": "x"}) == content_sha({"id": "ds-0001"})
    True
    """
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def id_pattern(prefix: str) -> re.Pattern[str]:
    """The ids of one store: `<prefix>-NNNN` (four digits or more)."""
    return re.compile(rf"^{re.escape(prefix)}-(\d{{4,}})\Z")


def claim_id(folder: Path, prefix: str) -> str:
    """Reserve the next `<prefix>-NNNN` in `folder` with O_EXCL on a claim file.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> claim_id(d, "ev"), claim_id(d, "ev")
    ('ev-0001', 'ev-0002')
    """
    ids = id_pattern(prefix)
    claims = re.compile(rf"^\.{re.escape(prefix)}-(\d{{4,}})\.claim\Z")
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        used = [
            int(m[1])
            for name in os.listdir(folder)
            if (m := ids.match(name.removesuffix(".json")) or claims.match(name))
        ]
        candidate = f"{prefix}-{max(used, default=0) + 1:04d}"
        try:
            os.close(os.open(folder / f".{candidate}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return candidate
        except FileExistsError:
            continue


def read_checked(path: Path, what: str, known: list[str], fix: str) -> dict[str, Any]:
    """A manifest read back and checked against its recorded hash: a missing file names the
    known ids, a changed one is refused with `fix` (what to do), never used.

    `what` names it in errors ("dataset ds-0003", "eval set ev-0002").
    """
    from storage.home import StorageError

    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise StorageError(f"{what} does not exist in {path.parent}: known: {known}") from None
    actual = content_sha(manifest)
    if actual != manifest.get("sha256"):
        raise StorageError(
            f"{what} is corrupted: content sha256 {actual[:12]}... != recorded "
            f"{str(manifest.get('sha256'))[:12]}...: {fix}"
        )
    return manifest


def store_new(folder: Path, prefix: str, manifest: dict[str, Any], what: str) -> dict[str, Any]:
    """Give `manifest` the next `<prefix>-NNNN` id and its hash, and write it whole (atomic).

    It is serialized once before an id is claimed, so a value JSON cannot hold fails with
    `what` named (e.g. "params") and leaves no id used. Returns the manifest as stored.
    """
    from storage.atomic import to_json, write_bytes_atomic

    to_json(manifest, what)
    manifest["id"] = claim_id(folder, prefix)
    manifest["sha256"] = content_sha(manifest)
    write_bytes_atomic(folder / f"{manifest['id']}.json", to_json(manifest, what))
    return manifest
