"""Which predictions go to people for labels: uncertainty top-k plus a random audit share.

Why two kinds of picks: uncertainty sampling gets the most model improvement per label, but
labels chosen by uncertainty are a biased sample, so accuracy measured on them says nothing
about production accuracy. The audit share is drawn uniformly at random *first*, from all
candidates, so accuracy on audit labels stays an unbiased estimate.

The draw and the ranking happen inside DuckDB, over every eligible row of the log
(`storage.Queries.ranked_candidates`: the audit order is a seeded hash of the request id, so
it does not depend on row order); `pick` applies the budget rule to those two short lists.
Under `[curation] diversity` or `stratify` the uncertainty picks come from a third short
list, a pool of the most uncertain rows with their features, spread by `curation.diversity`.
The scorers below say what the logged `confidence`, `margin` and `entropy` columns mean.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.diversity import spread_picks
from curation.rules import CurationRules
from storage.log_views import PICKS_SCHEMA

#: reasons a row is picked; "random" only under strategy="random" (picks beyond the audit share)
REASONS = ("uncertainty", "audit", "random")


def _as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs has shape {p.shape}: pass a (N, C) array of class probabilities")
    return p


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - max probability, in [0, 1 - 1/C]; higher = more uncertain.

    >>> least_confidence(np.array([[0.7, 0.3], [0.5, 0.5]])).round(2).tolist()
    [0.3, 0.5]
    """
    return 1.0 - _as_probs(probs).max(axis=1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """1 - (top-1 minus top-2 probability), in [0, 1]; higher = more uncertain.

    >>> margin_scores(np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])).round(2).tolist()
    [0.5, 1.0]
    """
    p = _as_probs(probs)
    if p.shape[1] == 1:
        return np.zeros(len(p))
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats (natural log, as the DuckDB queries compute it); 0 * ln 0 = 0.

    >>> entropy_scores(np.array([[1.0, 0.0], [0.5, 0.5]])).round(4).tolist()
    [0.0, 0.6931]
    """
    p = _as_probs(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return np.maximum(-terms.sum(axis=1), 0.0)  # no -0.0


def pool_args(rules: CurationRules, budget: int) -> dict:
    """The `ranked_candidates` keywords that bring the pool `pick` spreads picks over
    (nothing when the picks are plain top-k): `pool_factor` x budget rows under
    `diversity = "kcenter"`, the budget per stratum under quotas alone.

    >>> pool_args(CurationRules(diversity="kcenter", pool_factor=3, stratify="pred"), 10)
    {'pool': 30, 'stratum': 'pred'}
    >>> pool_args(CurationRules(), 10)
    {}
    """
    if not rules.spread or budget <= 0:
        return {}
    size = rules.pool_size(budget) if rules.diversity == "kcenter" else budget
    return {"pool": size, "stratum": rules.stratify}


def spread_rest(ranked: pa.Table, audit: pa.Table, n: int, rules: CurationRules) -> pa.Table:
    """The `n` uncertainty picks from the 'pool' rows (audit picks left out), spread by
    `curation.diversity.spread_picks`: over their features under `diversity = "kcenter"`,
    in quotas per stratum under `stratify`."""
    pool = ranked.filter(pc.equal(ranked.column("kind"), "pool"))
    pool = pool.filter(pc.invert(pc.is_in(pool.column("request_id"), audit.column("request_id"))))
    if n <= 0 or pool.num_rows == 0:
        return pool.slice(0, 0)
    vectors = pool.column("features").to_pylist()
    width = max((len(v) for v in vectors if v is not None), default=0)
    x = np.full((pool.num_rows, max(width, 1)), np.nan)
    for i, v in enumerate(vectors):
        if v is not None and len(v) == width and width:
            x[i] = v
    strata = pool.column("stratum").to_pylist()  # None: not logged, its own stratum
    chosen = spread_picks(
        pool.column("score").to_pylist(),
        pool.column("request_id").to_pylist(),
        n,
        features=x if width and rules.diversity == "kcenter" else None,
        strata=strata if rules.stratify else None,
    )
    return pool.take(pa.array(chosen, pa.int64()))


def pick(ranked: pa.Table, budget: int, rules: CurationRules) -> pa.Table:
    """The labels to ask for: a random audit share of `budget` first, then the most uncertain
    rows (or, under strategy "random", more random rows).

    `ranked` is `Queries.ranked_candidates(...)`: 'draw' rows (the audit order), 'top' rows
    (by score) and one 'counts' row (`n` eligible rows, `hidden` candidates a labeler cannot
    be shown). The budget is capped at the eligible rows; `rules.audit_count` of it are audit
    picks; the uncertainty picks skip the audit picks, ties go to the smaller request id.
    Returns PICKS_SCHEMA (request_id, reason audit|uncertainty|random, score), audit picks
    first, with schema metadata `eligible` and (when `ranked` counted them) `not_shown`.

    >>> ranked = pa.table({"kind": ["draw", "draw", "top", "top", "counts"],
    ...                    "request_id": ["b", "a", "a", "c", None],
    ...                    "score": [0.2, 0.9, 0.9, 0.5, None], "draw": [1, 2, 2, 7, None],
    ...                    "n": [3, 3, 3, 3, 3]})
    >>> picks = pick(ranked, 2, CurationRules(audit_share=0.5))
    >>> picks["request_id"].to_pylist(), picks["reason"].to_pylist()
    (['b', 'a'], ['audit', 'uncertainty'])
    """
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 0:
        raise ValueError(f"budget = {budget!r}: pass a whole number of labels (0 or more)")
    n_eligible = ranked.column("n")[0].as_py() if ranked.num_rows else 0
    counted = "hidden" in ranked.column_names  # ranked_candidates(shown=...) counted them
    hidden = ranked.column("hidden")[0].as_py() if counted and ranked.num_rows else 0
    budget = min(int(budget), int(n_eligible))
    n_audit = rules.audit_count(budget)
    drawn = ranked.filter(pc.equal(ranked.column("kind"), "draw"))
    drawn = drawn.sort_by([("draw", "ascending"), ("request_id", "ascending")])
    audit = drawn.slice(0, n_audit)
    if rules.strategy == "random":
        rest, why = drawn.slice(n_audit, budget - n_audit), "random"
    elif rules.spread and "features" in ranked.column_names:
        rest = spread_rest(ranked, audit, budget - n_audit, rules)
        why = "uncertainty"
    else:
        top = ranked.filter(pc.equal(ranked.column("kind"), "top"))
        top = top.filter(pc.invert(pc.is_in(top.column("request_id"), audit.column("request_id"))))
        top = top.sort_by([("score", "descending"), ("request_id", "ascending")])
        rest, why = top.slice(0, budget - n_audit), "uncertainty"
    rest = rest.select(["request_id", "score"])
    reasons = ["audit"] * audit.num_rows + [why] * rest.num_rows
    ids = [audit.column("request_id").combine_chunks(), rest.column("request_id").combine_chunks()]
    scores = [audit.column("score").combine_chunks(), rest.column("score").combine_chunks()]
    return pa.table(
        {
            "request_id": pa.concat_arrays([a.cast(pa.string()) for a in ids]),
            "reason": pa.array(reasons, pa.string()),
            "score": pa.concat_arrays([a.cast(pa.float64()) for a in scores]),
        },
        schema=PICKS_SCHEMA,
    ).replace_schema_metadata(
        {"eligible": str(int(n_eligible))} | ({"not_shown": str(int(hidden))} if counted else {})
    )


def quota_count(share: float, picks: int) -> int:
    """Uncertainty picks a cohort's quota reserves: round(share x picks), at least 1 when the
    share is positive and there is a pick to give.

    >>> quota_count(0.25, 16), quota_count(0.01, 16), quota_count(0.0, 16), quota_count(0.5, 0)
    (4, 1, 0, 0)
    """
    if share <= 0 or picks <= 0:
        return 0
    return min(picks, max(1, round(share * picks)))


def with_quota(picks: pa.Table, cohort_rows: pa.Table, n: int, reason: str) -> pa.Table:
    """`picks` with up to `n` of the cohort's rows (`cohort_rows`: request_id, score, most
    uncertain first) in place of the lowest-scored uncertainty picks; rows already picked
    are skipped, audit picks are never replaced. The cohort's picks get `reason`.

    >>> p = pa.table({"request_id": ["a", "b", "c"], "reason": ["audit", "uncertainty",
    ...               "uncertainty"], "score": [0.1, 0.9, 0.8]}, schema=PICKS_SCHEMA)
    >>> q = with_quota(p, pa.table({"request_id": ["b", "z"], "score": [0.9, 0.4]}), 1, "cohort:x")
    >>> q["request_id"].to_pylist(), q["reason"].to_pylist()
    (['a', 'b', 'z'], ['audit', 'uncertainty', 'cohort:x'])
    """
    taken = set(picks.column("request_id").to_pylist())
    rows = [r for r in cohort_rows.to_pylist() if r["request_id"] not in taken]
    reasons = picks.column("reason").to_pylist()
    replaceable = [i for i, r in enumerate(reasons) if r == "uncertainty"]
    k = min(int(n), len(rows), len(replaceable))
    if k == 0:
        return picks
    dropped = set(sorted(replaceable, key=lambda i: picks.column("score")[i].as_py())[:k])
    kept = picks.take(pa.array([i for i in range(picks.num_rows) if i not in dropped], pa.int64()))
    extra = pa.table(
        {
            "request_id": pa.array([r["request_id"] for r in rows[:k]], pa.string()),
            "reason": pa.array([reason] * k, pa.string()),
            "score": pa.array([float(r["score"]) for r in rows[:k]], pa.float64()),
        },
        schema=PICKS_SCHEMA,
    )
    return pa.concat_tables([kept, extra]).replace_schema_metadata(picks.schema.metadata)
