"""The last step of `Queries.curation_picks`: DuckDB has drawn the audit order and ranked the
uncertainty scores over every eligible row; this applies `curation.sampling.select`'s budget
rule to those two short lists (`storage` may not import `curation`, so the rule is restated
here and a unit test keeps the two in step)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from storage.home import StorageError
from storage.log_views import PICKS_SCHEMA


def check_pick_args(budget: int, strategy: str, audit_share: float, strategies) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise StorageError(f"budget = {budget!r}: pass a whole number of samples (0 or more)")
    if strategy not in strategies:
        raise StorageError(f"strategy = {strategy!r} is unknown: use one of {list(strategies)}")
    if not 0.0 <= audit_share <= 1.0:
        raise StorageError(f"audit_share = {audit_share} must be within [0, 1] (0.2 = 20%)")


def audit_count(budget: int, audit_share: float) -> int:
    """round(budget * share), at least 1 when share > 0 and budget >= 2 (as `select`)."""
    n_audit = round(budget * audit_share)
    if audit_share > 0 and budget >= 2:
        n_audit = max(1, n_audit)
    return min(n_audit, budget)


def combine_picks(rows: pa.Table, budget: int, strategy: str, audit_share: float) -> pa.Table:
    """`rows`: kind ('draw' rows in random order, 'top' rows by score, one 'counts' row),
    request_id, score, n (eligible rows), hidden (candidates left out: nothing a labeler can
    be shown). Returns PICKS_SCHEMA: audit picks, then uncertainty (or random) picks; the
    numbers of eligible and left-out candidates are in the schema metadata (`eligible`,
    `not_shown`)."""
    n_eligible = rows.column("n")[0].as_py() if rows.num_rows else 0
    counted = "hidden" in rows.column_names  # curation_picks(shown=...) counted the left-out
    hidden = rows.column("hidden")[0].as_py() if counted and rows.num_rows else 0
    budget = min(int(budget), int(n_eligible))
    n_audit = audit_count(budget, audit_share)
    drawn = rows.filter(pc.equal(rows.column("kind"), "draw"))
    drawn = drawn.sort_by([("draw", "ascending"), ("request_id", "ascending")])
    audit = drawn.slice(0, n_audit)
    if strategy == "random":
        rest, why = drawn.slice(n_audit, budget - n_audit), "random"
    else:
        top = rows.filter(pc.equal(rows.column("kind"), "top"))
        top = top.filter(pc.invert(pc.is_in(top.column("request_id"), audit.column("request_id"))))
        top = top.sort_by([("score", "descending"), ("request_id", "ascending")])
        rest, why = top.slice(0, budget - n_audit), "uncertainty"
    reasons = ["audit"] * audit.num_rows + [why] * rest.num_rows
    return pa.table(
        {
            "request_id": pa.concat_arrays(
                [
                    audit.column("request_id").combine_chunks(),
                    rest.column("request_id").combine_chunks(),
                ]
            ),
            "reason": pa.array(reasons, pa.string()),
            "score": pa.concat_arrays(
                [audit.column("score").combine_chunks(), rest.column("score").combine_chunks()]
            ),
        },
        schema=PICKS_SCHEMA,
    ).replace_schema_metadata(
        {"eligible": str(int(n_eligible))} | ({"not_shown": str(int(hidden))} if counted else {})
    )
