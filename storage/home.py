"""Where loopwright keeps its data: one folder, the "data home", laid out the same way everywhere.

Every path is derived here, so that no other module spells a folder name and moving the home
(a laptop folder today, a mounted volume tomorrow) is one argument. Nothing is created until
`ensure()` is called by an entry point.

With `logs_url` (`[storage] logs_url = "s3://bucket/prefix"`) the four append-only logs
(predictions, labels, queue, seed) live on object storage under that prefix, with the same
layout, and the rest (registry, models, datasets, reports, state) stays in the folder. The
logs are what grows and what many writers on many machines append to; docs/scale-out.md says
what of the home is not on object storage yet.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage.maintenance import clean_home
from storage.objects import ObjectFolder, check_logs_url

# readers' local copies of the parts of logs on object storage (storage/objects.py)
OBJECTS_CACHE = ".objects-cache"


class StorageError(ValueError):
    """A storage precondition failed; the message names the path or field and the fix."""


@dataclass(frozen=True)
class DataHome:
    """The data home: `DataHome(Path(".loopwright")).predictions` is the prediction log folder."""

    root: Path
    logs_url: str = ""  # "" = the logs in `root`; "s3://bucket/prefix" = on object storage
    endpoint_url: str = ""  # an S3-compatible server ("" = AWS)

    def __post_init__(self) -> None:
        # Accept a str too: callers read the home from config or the environment.
        object.__setattr__(self, "root", Path(self.root))
        problem = check_logs_url(self.logs_url)
        if problem:
            raise StorageError(problem)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], logs_url: str = "", endpoint_url: str = ""
    ) -> DataHome:
        """Build a home from a user-supplied path (`~` expanded, made absolute)."""
        return cls(Path(path).expanduser().absolute(), logs_url, endpoint_url)

    def _log(self, name: str) -> Path | ObjectFolder:
        if self.logs_url:
            cache = str(self.root / OBJECTS_CACHE)
            return ObjectFolder(self.logs_url, self.endpoint_url, cache) / name
        return self.root / name

    @property
    def predictions(self) -> Path | ObjectFolder:
        return self._log("predictions")

    @property
    def labels(self) -> Path | ObjectFolder:
        return self._log("labels")

    @property
    def queue(self) -> Path | ObjectFolder:
        return self._log("queue")

    @property
    def seed(self) -> Path | ObjectFolder:
        return self._log("seed")

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def registry_file(self) -> Path:
        return self.root / "registry.json"

    @property
    def registry_lock(self) -> Path:
        return self.root / "registry.lock"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def drift_reports(self) -> Path:
        return self.reports / "drift"

    @property
    def cards(self) -> Path:
        return self.reports / "cards"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def sim(self) -> Path:
        return self.root / "sim"

    def folders(self) -> tuple[Path, ...]:
        """Every local folder of the layout, parents before children."""
        logs = (self.predictions, self.labels, self.queue, self.seed)
        return (
            *(f for f in logs if isinstance(f, Path)),
            self.datasets,
            self.models,
            self.reports,
            self.drift_reports,
            self.cards,
            self.state,
            self.sim,
        )

    def ensure(self) -> DataHome:
        """Create the layout and prove the home is writable, so a bad path fails at start-up
        with a clear message instead of mid-run with a bare OSError."""
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(
                f"data home {self.root} is a file, not a folder: "
                "point LOOPWRIGHT_HOME (home.path) at a folder"
            )
        try:
            for folder in self.folders():
                folder.mkdir(parents=True, exist_ok=True)
            # mkdir(exist_ok=True) succeeds on a read-only existing folder: probe with a write.
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            where = err.filename or self.root
            raise StorageError(
                f"data home {self.root} is not writable ({where}: {err.strerror}): "
                "fix its permissions or point LOOPWRIGHT_HOME (home.path) elsewhere"
            ) from err
        if self.logs_url:
            self._probe_logs()
        clean_home(self)
        return self

    def _probe_logs(self) -> None:
        """Prove the logs' bucket answers and takes writes now, not at the first append."""
        probe = ObjectFolder(self.logs_url, self.endpoint_url) / f".write-probe-{os.getpid()}"
        try:
            probe.put(b"")
            probe.delete()
        except Exception as err:  # noqa: BLE001 - botocore, OSError, PermissionError ...
            where = f" at {self.endpoint_url}" if self.endpoint_url else ""
            raise StorageError(
                f"storage.logs_url = {self.logs_url!r}{where} does not take writes "
                f"({type(err).__name__}: {str(err)[:200]}): check the bucket exists, "
                "storage.endpoint_url, and the credentials in AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ) from err
