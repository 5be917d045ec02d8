"""Where loopwright keeps its data: one folder, the "data home", laid out the same way everywhere.

Every path is derived here, so that no other module spells a folder name and moving the home
(a laptop folder today, a mounted volume tomorrow) is one argument. Nothing is created until
`ensure()` is called by an entry point.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage.maintenance import clean_home


class StorageError(ValueError):
    """A storage precondition failed; the message names the path or field and the fix."""


@dataclass(frozen=True)
class DataHome:
    """The data home: `DataHome(Path(".loopwright")).predictions` is the prediction log folder."""

    root: Path

    def __post_init__(self) -> None:
        # Accept a str too: callers read the home from config or the environment.
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> DataHome:
        """Build a home from a user-supplied path (`~` expanded, made absolute)."""
        return cls(Path(path).expanduser().absolute())

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def seed(self) -> Path:
        return self.root / "seed"

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
        """Every folder of the layout, parents before children."""
        return (
            self.predictions,
            self.labels,
            self.queue,
            self.seed,
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
        clean_home(self)
        return self
