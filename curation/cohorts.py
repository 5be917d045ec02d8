"""Cohorts: named SQL predicates over the prediction log, watched, curated and judged as slices.

Why: a failure mode someone can describe ("scanner-c's images", "rows the model is unsure
of at night", "loans above 150k") is a projection of the traffic that the global numbers
average away. `[[cohort]]` names it once, as a DuckDB predicate over the log's columns
(`attrs['device'] = 'scanner-c'`, `confidence < 0.6`, `features[3] > 100`), and every stage
reads it: drift-check reports the cohort's share, confidence and label-free estimate;
curation can reserve a share of the uncertainty picks for it; the report card and the gate
treat it as a slice (`cohort:<name>`); its confidence drop can fire the trigger.

A predicate is checked when the config is read, against an empty table of the log's schema
in DuckDB, so a typo in a column or in SQL is an error naming the cohort, not a failure at
3 a.m. in a scheduled run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: the slice key a cohort is known by in report cards, gates and estimates
SLICE_PREFIX = "cohort:"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_KEYS = ("name", "where", "quota", "confidence_drop")


@dataclass(frozen=True)
class Cohort:
    """One `[[cohort]]` table (see loopwright.toml)."""

    name: str
    where: str  # a DuckDB predicate over the prediction log's columns
    quota: float = 0.0  # share of each batch's uncertainty picks reserved for the cohort
    confidence_drop: float = 0.0  # fire the trigger when its mean confidence falls this far
    # below the champion's validation confidence (0 = the cohort never fires)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"[[cohort]] name = {self.name!r}: use a letter then letters, digits, _ or - "
                '(at most 64), e.g. name = "scanner-c"'
            )
        if not isinstance(self.where, str) or not self.where.strip() or ";" in self.where:
            raise ValueError(
                f"[[cohort]] {self.name!r}: where = {self.where!r} must be one SQL predicate "
                "(no ';'), e.g. where = \"attrs['device'] = 'scanner-c'\""
            )
        for key in ("quota", "confidence_drop"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise ValueError(
                    f"[[cohort]] {self.name!r}: {key} = {v!r} must lie between 0 and 1, "
                    "e.g. 0.25 (0 = off)"
                )

    @property
    def slice_key(self) -> str:
        """`cohort:<name>`: the slice key of its members (value "in").

        >>> Cohort("night", "confidence < 0.5").slice_key
        'cohort:night'
        """
        return SLICE_PREFIX + self.name


def check_predicate(cohort: Cohort) -> None:
    """Run the predicate on an empty table of the prediction log's schema: a column that
    does not exist or SQL that does not parse is a ValueError naming the cohort."""
    import duckdb

    from storage.schemas import PREDICTION_SCHEMA

    con = duckdb.connect()
    try:
        con.register("predictions", PREDICTION_SCHEMA.empty_table())
        con.execute(f"SELECT count(*) FROM predictions WHERE ({cohort.where})").fetchall()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(
            f"[[cohort]] {cohort.name!r}: where = {cohort.where!r} does not run on the "
            f"prediction log ({first}): write a DuckDB predicate over its columns "
            f"{PREDICTION_SCHEMA.names}, e.g. attrs['device'] = 'scanner-c'"
        ) from None
    finally:
        con.close()


def parse_cohorts(raw: object) -> tuple[Cohort, ...]:
    """The `[[cohort]]` array of tables as Cohorts: keys known, names unique, predicates run.

    >>> [c.name for c in parse_cohorts([{"name": "low", "where": "confidence < 0.5"}])]
    ['low']
    """
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise ValueError(
            "cohort must be an array of tables: write each as [[cohort]] with name and where"
        )
    out: list[Cohort] = []
    for i, table in enumerate(raw):
        unknown = sorted(set(table) - set(_KEYS))
        label = table.get("name", f"#{i + 1}")
        if unknown:
            raise ValueError(
                f"[[cohort]] {label!r}: unknown key(s) {unknown}: known keys are {list(_KEYS)}"
            )
        missing = [k for k in ("name", "where") if k not in table]
        if missing:
            raise ValueError(f"[[cohort]] {label!r}: {missing} missing: give name and where")
        cohort = Cohort(**dict(table))
        if cohort.name in {c.name for c in out}:
            raise ValueError(f"[[cohort]] name {cohort.name!r} is used twice: name each once")
        check_predicate(cohort)
        out.append(cohort)
    return tuple(out)


def with_cohorts(
    attrs: Iterable[Mapping[str, str] | None],
    request_ids: Iterable[str],
    members: Mapping[str, set[str]],
) -> list[dict[str, str]]:
    """Each row's attrs plus `cohort:<name>: "in"` for every cohort it belongs to: how a
    report card, the gate and the estimate see cohorts as slices.

    >>> with_cohorts([{"d": "a"}, None], ["r1", "r2"], {"low": {"r2"}})
    [{'d': 'a'}, {'cohort:low': 'in'}]
    """
    out = []
    for a, rid in zip(attrs, request_ids, strict=True):
        row = dict(a or {})
        for name, ids in members.items():
            if rid in ids:
                row[SLICE_PREFIX + name] = "in"
        out.append(row)
    return out
