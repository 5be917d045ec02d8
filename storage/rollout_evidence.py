"""What each arm of a rollout served in a time window, read from the logs (DuckDB).

Why here: `storage/` alone touches DuckDB. The rollout stage asks, per arm (a role and the
version that served it): how many predictions, their mean confidence and predicted classes,
and the outcomes on the labels that arrived for them. Only unbiased labels count: rows the
curation queue picked as `audit` (a random share) and rows with user `feedback`; rows picked
for `uncertainty` are hard cases chosen on purpose and would make either arm look worse.
"""

from __future__ import annotations

from datetime import datetime

from storage.log_views import FIRST_LOGGED
from storage.queries import Queries


def arm_evidence(
    queries: Queries, role: str, version: str, since: datetime, until: datetime
) -> dict:
    """`{"predictions", "mean_confidence", "class_counts", "labeled", "correct"}` of the rows
    logged with this role and version, `since <= ts < until`."""
    params = {"role": role, "mv": version, "since": since, "until": until}
    served = f"""
        served AS (
          SELECT request_id, pred, confidence FROM predictions_raw
          WHERE role = $role AND model_version = $mv AND ts >= $since AND ts < $until
          QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY {FIRST_LOGGED}) = 1
        )"""
    summary_sql = f"""WITH {served}
        SELECT pred, count(*), sum(CAST(confidence AS DOUBLE)) FROM served GROUP BY pred"""
    outcome_sql = f"""WITH {served},
        latest AS (
          SELECT request_id, label FROM labels
          WHERE request_id IN (SELECT request_id FROM served)
          QUALIFY row_number() OVER
            (PARTITION BY request_id ORDER BY ts DESC, file_index DESC, file_row_number DESC) = 1
        ),
        unbiased AS (
          SELECT request_id FROM queue WHERE reason IN ('audit', 'random')
          UNION
          SELECT request_id FROM labels WHERE source = 'feedback'
        )
        SELECT count(*), coalesce(sum(CASE WHEN s.pred = l.label THEN 1 ELSE 0 END), 0)
        FROM served s JOIN latest l USING (request_id)
        WHERE s.request_id IN (SELECT request_id FROM unbiased)"""

    def go(con):
        groups = con.execute(summary_sql, params).fetchall()
        labeled, correct = con.execute(outcome_sql, params).fetchall()[0]
        return groups, int(labeled), int(correct)

    groups, labeled, correct = queries._run(("predictions", "queue", "labels"), go)
    n = sum(int(c) for _, c, _ in groups)
    total_conf = sum(float(s or 0.0) for _, _, s in groups)
    return {
        "predictions": n,
        "mean_confidence": total_conf / n if n else None,
        "class_counts": {str(p): int(c) for p, c, _ in groups},
        "labeled": labeled,
        "correct": correct,
    }
