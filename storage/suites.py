"""Named edge-case suites, stored as `<home>/suites/NAME.json` (one small file each).

Why the request ids are resolved when a suite is added: a suite is what a person looked at
and picked; a `--where` query run again later would match different rows (new traffic), and
every report card must judge the same rows. Only rows that have a label can be judged, so
the others are dropped at add time and counted in the file. The SQL is kept for the record.

`--where` is a SQL condition on the prediction log (the deduplicated `predictions` view of
`log_views.py`, one row per request id) with the latest label joined in; its columns are
`WHERE_COLUMNS`. Seed rows are not in the prediction log: name them with `--request-ids`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from evaluation.suites import DEFAULT_TOLERANCE, check_rule
from storage.atomic import write_json_atomic
from storage.home import DataHome, StorageError
from storage.log_views import LATEST_LABEL, connect

#: a suite name: a file name on every filesystem, and a word in a CLI
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: what a `--where` condition may name: the prediction log's columns and the latest label
WHERE_COLUMNS = (
    "request_id", "ts", "model_version", "role", "features", "input", "input_uri", "probs",
    "pred", "confidence", "margin", "entropy", "attrs", "label", "label_source",
)  # fmt: skip


@dataclass(frozen=True)
class Suite:
    """One stored suite; `request_ids` are labeled rows, resolved when it was added."""

    name: str
    request_ids: tuple[str, ...]
    created: str
    description: str = ""
    required: bool = False
    where: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    min_accuracy: float | None = None
    #: asked-for rows left out when it was added: known but unlabeled, or never logged
    dropped_unlabeled: int = 0
    unknown: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["request_ids"] = list(self.request_ids)
        d.pop("extra")
        return {**self.extra, **d}


def suites_dir(home: DataHome) -> Path:
    return home.root / "suites"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise StorageError(
            f"suite name {name!r}: use 1-64 lowercase letters, digits, '-' or '_', starting "
            "with a letter or digit (e.g. scanner-b-eights)"
        )
    return name


def _path(home: DataHome, name: str) -> Path:
    return suites_dir(home) / f"{check_name(name)}.json"


def _labeled_ids(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """(labeled, known) among `ids`: known = logged as a prediction or a seed example;
    labeled = known and with a label event (what `Queries.labeled_examples` can return)."""
    con.register("wanted", pa.table({"request_id": pa.array(list(ids), pa.string())}))
    known = {
        r[0]
        for r in con.execute(
            """SELECT request_id FROM wanted SEMI JOIN predictions_raw USING (request_id)
               UNION SELECT request_id FROM wanted SEMI JOIN seed_raw USING (request_id)"""
        ).fetchall()
    }
    labeled = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT request_id FROM wanted SEMI JOIN labels USING (request_id)"
        ).fetchall()
    }
    return labeled & known, known


def resolve_request_ids(home: DataHome, request_ids: Sequence[str]) -> tuple[list[str], int, int]:
    """(labeled ids in the order given, dropped unlabeled, unknown) for `--request-ids`."""
    ids = list(dict.fromkeys(str(i).strip() for i in request_ids if str(i).strip()))
    if not ids:
        raise StorageError("--request-ids is empty: give ids separated by commas, e.g. r1,r2")
    con = connect(home, "predictions", "seed", "labels")
    try:
        labeled, known = _labeled_ids(con, ids)
    finally:
        con.close()
    kept = [i for i in ids if i in labeled]
    return kept, len(known - labeled), len(ids) - len(known)


def where_sql(where: str) -> str:
    """The query a `--where` condition runs in: one row per logged prediction, its label."""
    return f"""WITH {LATEST_LABEL},
        suite_rows AS (
          SELECT p.* EXCLUDE (file_index, file_row_number), l.label, l.source AS label_source
          FROM predictions p LEFT JOIN latest l USING (request_id)
        )
        SELECT request_id, label IS NOT NULL FROM suite_rows WHERE ({where})
        ORDER BY ts, request_id"""


def resolve_where(home: DataHome, where: str) -> tuple[list[str], int]:
    """(labeled ids matching `where`, oldest first; matching rows without a label)."""
    if not where or not where.strip():
        raise StorageError("--where is empty: give a SQL condition, e.g. \"attrs['device'] = 'b'\"")
    sql = where_sql(where)
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise StorageError(_where_error(where, exc)) from None
    if len(statements) != 1:
        raise StorageError(
            f"--where {where!r} holds more than one SQL statement: give one condition"
        )
    con = connect(home, "predictions", "labels")
    try:
        rows = con.execute(sql).fetchall()
    except duckdb.Error as exc:
        raise StorageError(_where_error(where, exc)) from None
    finally:
        con.close()
    return [r[0] for r in rows if r[1]], sum(1 for r in rows if not r[1])


def _where_error(where: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"--where {where!r} is not a valid condition on the prediction log (DuckDB: {first}): "
        f'use SQL on the columns {", ".join(WHERE_COLUMNS)}, e.g. "pred <> label"'
    )


def add_suite(
    home: DataHome,
    name: str,
    *,
    request_ids: Sequence[str] | None = None,
    where: str | None = None,
    required: bool = False,
    description: str = "",
    tolerance: float = DEFAULT_TOLERANCE,
    min_accuracy: float | None = None,
    now: str | None = None,
) -> Suite:
    """Resolve the rows (ids or SQL: exactly one), keep the labeled ones, write the file."""
    check_name(name)
    check_rule(tolerance, min_accuracy)
    if (request_ids is None) == (where is None):
        raise StorageError("give exactly one of --request-ids and --where")
    path = _path(home, name)
    if path.exists():
        raise StorageError(
            f"suite {name!r} exists ({path}): remove it first (`loopwright suite remove {name}`)"
        )
    unknown = 0
    if request_ids is not None:
        ids, dropped, unknown = resolve_request_ids(home, request_ids)
    else:
        ids, dropped = resolve_where(home, where)
    if not ids:
        asked = f"--where {where!r}" if where is not None else "--request-ids"
        raise StorageError(
            f"{asked} selects no labeled row ({dropped} matching rows have no label"
            + (f", {unknown} ids are not in the prediction log or the seed" if unknown else "")
            + "): a suite needs labels to judge a model; label the rows first or pick others"
        )
    suite = Suite(
        name=name,
        request_ids=tuple(ids),
        created=now or datetime.now(UTC).isoformat(timespec="seconds"),
        description=description,
        required=bool(required),
        where=where,
        tolerance=float(tolerance),
        min_accuracy=None if min_accuracy is None else float(min_accuracy),
        dropped_unlabeled=dropped,
        unknown=unknown,
    )
    write_json_atomic(path, suite.to_dict(), f"suite {name}")
    return suite


def _from_dict(d: dict[str, Any], path: Path) -> Suite:
    known = {f for f in Suite.__dataclass_fields__ if f != "extra"}
    try:
        return Suite(
            **{k: v for k, v in d.items() if k in known and k != "request_ids"},
            request_ids=tuple(str(i) for i in d["request_ids"]),
            extra={k: v for k, v in d.items() if k not in known},
        )
    except (KeyError, TypeError) as exc:
        raise StorageError(
            f"{path} is not a suite ({exc}): remove it (`loopwright suite remove NAME`) and add it again"
        ) from None


def load_suite(home: DataHome, name: str) -> Suite:
    path = _path(home, name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        names = [s.name for s in list_suites(home)]
        raise StorageError(
            f"no suite {name!r}: known suites are {names} (`loopwright suite list`)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StorageError(
            f"{path} is not valid JSON ({exc}): remove it and add it again"
        ) from None
    return _from_dict(data, path)


def list_suites(home: DataHome) -> list[Suite]:
    """Every stored suite, by name; none when the folder does not exist (nothing is made)."""
    folder = suites_dir(home)
    if not folder.is_dir():
        return []
    return [
        load_suite(home, p.stem) for p in sorted(folder.glob("*.json")) if NAME_RE.match(p.stem)
    ]


def remove_suite(home: DataHome, name: str) -> Suite:
    suite = load_suite(home, name)
    _path(home, name).unlink()
    return suite
