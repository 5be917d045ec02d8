"""`[drift]`: what a drift check compares, how it decides, and when it writes the human report.

Why the section is this dataclass: the drift check (`flows/drift_check.py`, the engine) and
the config read one set of fields, defaults and range checks. The small pure rules of a check
that depend only on these settings live here too: `reference_times` (the reference window),
`traffic_end` (where a champion's reference traffic ends),
`report_due` (is the Evidently report written at this check?) and `shown_features` (which
columns it shows).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

_CHOICES = {
    "html_report": ("on_change", "always", "never"),
    "stattest": ("auto", "distance"),
    "reference": ("champion", "window"),
    "champion_reference": ("traffic", "training"),
}
# a zero here would make the check do nothing (or, for Evidently's sample, mean "every row")
_AT_LEAST_ONE = ("reference_rows", "window_rows", "rescore_rows", "report_sample_rows")


@dataclass(frozen=True)
class DriftRules:
    """The `[drift]` section (see loopwright.toml for the meaning of each key)."""

    reference_rows: int = 600  # seeded sample of the champion's training rows
    window_rows: int = 400  # latest champion-role predictions, streamed (any size)
    rescore_rows: int = 5000  # of the window, re-scored by the champion (pred, confidence)
    numeric_threshold: float = 0.1  # normed Wasserstein distance per feature
    categorical_threshold: float = 0.1  # Jensen-Shannon distance on the predicted class
    drift_share: float = 0.5  # dataset drift when this share of columns drift
    report_sample_rows: int = 2000  # rows handed to Evidently for the human report
    report_columns: int = 16  # most drifted features in the report (0 = all); ~0.09 s each
    html_report: str = "on_change"  # on_change | always | never
    stattest: str = "auto"  # auto (Evidently's: p-value tests at <= 1000 reference rows) | distance
    p_value: float = 0.05  # K-S / chi-square / z-test threshold under "auto"
    reference: str = "champion"  # champion (its training rows, re-scored) | window (of the log)
    champion_reference: str = "training"  # champion: training rows | traffic (traffic_end)
    reference_start: str = ""  # window: ISO time, first row of the reference (inclusive)
    reference_end: str = ""  # window: ISO time, end of the reference (exclusive)
    reference_model_version: str = ""  # window: only rows this model_version logged

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"[drift] {key} = {getattr(self, key)!r} is not one of {list(allowed)}: "
                    "pick one of them"
                )
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(
                    f"[drift] {f.name} = {value!r} must not be negative: use 0 or more"
                )
        for key in _AT_LEAST_ONE:
            if getattr(self, key) < 1:
                raise ValueError(
                    f"[drift] {key} = {getattr(self, key)!r} must be at least 1: a check needs rows"
                )
        if not 0 <= self.drift_share <= 1:
            raise ValueError(
                f"[drift] drift_share = {self.drift_share!r} must lie between 0 and 1, e.g. 0.5"
            )
        if not 0 < self.p_value < 1:
            raise ValueError(
                f"[drift] p_value = {self.p_value!r} must lie between 0 and 1 (exclusive), e.g. 0.05"
            )
        start, end = reference_times(self)
        if start and end and start >= end:
            raise ValueError(
                f"[drift] reference_start = {self.reference_start!r} is not before reference_end "
                f"= {self.reference_end!r}: the reference window would be empty; move one of them"
            )
        if start and not end:
            raise ValueError(
                f"[drift] reference_start = {self.reference_start!r} without reference_end: set "
                "the end of the reference window too (the current window starts there)"
            )
        if self.report_sample_rows > self.rescore_rows:
            raise ValueError(
                f"[drift] report_sample_rows = {self.report_sample_rows} exceeds rescore_rows = "
                f"{self.rescore_rows}: the report samples the re-scored rows; lower "
                "report_sample_rows or raise rescore_rows"
            )


def reference_times(rules: DriftRules) -> tuple[datetime | None, datetime | None]:
    """`reference_start` / `reference_end` as UTC times (None when empty); a time without a
    zone is UTC.

    >>> reference_times(DriftRules(reference_start="2026-05-01", reference_end="2026-05-08T12:00:00+02:00"))
    (datetime.datetime(2026, 5, 1, 0, 0, tzinfo=datetime.timezone.utc), datetime.datetime(2026, 5, 8, 10, 0, tzinfo=datetime.timezone.utc))
    """
    out: list[datetime | None] = []
    for key in ("reference_start", "reference_end"):
        text = getattr(rules, key)
        if not text:
            out.append(None)
            continue
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"[drift] {key} = {text!r} is not an ISO time: write it like "
                '"2026-05-01T00:00:00Z" or "2026-05-01"'
            ) from None
        out.append(t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC))
    return out[0], out[1]


def traffic_end(example_ts: list[datetime | None]) -> datetime | None:
    """Where the traffic a champion was trained on ends: just after the newest served row its
    dataset holds (`example_ts`: their times; the caller leaves seed rows out, None is
    skipped); None when it holds none.

    Why the drift reference can be the traffic up to there (`[drift] champion_reference =
    "traffic"`): the champion was trained on labels from that traffic and passed the gate on
    it; its training rows are mostly seed rows from before any drift, and measured against
    them a drift the champion already handles keeps firing. Not the default: measured
    (bench loop, 1 seed, loop-uncertainty@20), it silenced the drift rule after the first
    promotion on drifted data, before the champion had caught up (AUC 0.940 -> 0.901 on
    rotation-ramp, 0.840 -> 0.811 on sudden-inversion); the trigger episode
    (`retrain.trigger_episode`) stops a handled drift from firing instead.

    >>> traffic_end([None, datetime(2026, 5, 1, 10, tzinfo=UTC), datetime(2026, 5, 1, 9, tzinfo=UTC)])
    datetime.datetime(2026, 5, 1, 10, 0, 0, 1, tzinfo=datetime.timezone.utc)
    >>> traffic_end([None, None]) is None
    True
    """
    times = [t for t in example_ts if t is not None]
    if not times:
        return None
    return max(times) + timedelta(microseconds=1)


def report_due(mode: str, previous: dict | None, subject: str, status: str) -> tuple[bool, str]:
    """Whether to write the Evidently HTML report at this check, and why. `subject` is a
    champion's version, or "window: <the reference window>".

    Why rationed: the report is most of a check's time, and people need it when something
    changed, not at every hourly check.

    >>> report_due("on_change", {"champion": "v1", "status": "ok"}, "v1", "drift")
    (True, 'verdict changed ok -> drift')
    >>> report_due("on_change", {"champion": "v1", "status": "ok"}, "v1", "ok")
    (False, 'verdict unchanged (ok) for champion v1')
    >>> report_due("on_change", None, "window: rows before 2026-05-08", "ok")
    (True, 'first check against the reference window (rows before 2026-05-08)')
    """
    if subject.startswith("window: "):
        who = f"the reference window ({subject.removeprefix('window: ')})"
    else:
        who = f"champion {subject}"
    if mode in {"always", "never"}:
        return mode == "always", f"html_report = {mode}"
    if not previous or previous.get("champion") != subject:
        return True, f"first check {'against' if subject.startswith('window: ') else 'of'} {who}"
    if previous.get("status") != status:
        return True, f"verdict changed {previous.get('status')} -> {status}"
    return False, f"verdict unchanged ({status}) for {who}"


def shown_features(columns: list[dict], limit: int) -> list[int]:
    """The feature columns the human report shows: the `limit` with the highest drift scores
    (all when 0). Evidently's cost grows with the columns (~0.09 s CPU each, whatever the rows
    up to a few thousand), and people read the columns that moved first.

    >>> shown_features([{"score": 0.1}, {"score": 0.5}, {"score": 0.3}], 2)
    [1, 2]
    >>> shown_features([{"score": 0.04, "score_kind": "p_value"}, {"score": 0.9, "score_kind": "p_value"}], 1)
    [0]
    """

    def strength(c: dict) -> float:  # p-values: the smaller, the stronger the evidence
        return -c["score"] if c.get("score_kind") == "p_value" else c["score"]

    order = sorted(range(len(columns)), key=lambda j: (-strength(columns[j]), j))
    return order[:limit] if limit else order
