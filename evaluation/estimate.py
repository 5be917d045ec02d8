"""How well is the champion doing right now, before the labels arrive? A confidence-based
performance estimate (the idea of NannyML's CBPE).

How: the champion's confidence (max probability) is calibrated on labeled rows, with an
isotonic regression of "was it right" on confidence; the expected accuracy of the recent
window is the mean calibrated confidence of its rows, overall and per slice attribute.
Which rows calibrate (`[estimate] calibrate_on`, `flows/loop/estimate.py`): its own audit
rows (the unbiased random share; but a champion promoted every few batches never gathers
30 of them: on rotation-ramp at 10 % it had an estimate in 0 of 30 batches), or, the
default, every labeled row it did not train on, re-scored by it (29 of 30 batches, 2.4
points mean error there). A calibration conditions on confidence, so rows picked for their
(an earlier model's) uncertainty bias it far less than they would bias a plain accuracy.

The interval is a seeded bootstrap over the audit rows, refitting the calibrator each time:
with hundreds of window rows and tens of audit labels, the calibration is by far the larger
uncertainty, and a bootstrap captures it (including the step shape isotonic regression
takes) without a formula for it. It is an interval for the *expected* accuracy; the realized
accuracy of a small slice also varies by its own sampling (`sd_sampling`, the Poisson-binomial
standard deviation of the window's mean), reported beside it.

Where it fails, by construction: it assumes P(correct | confidence) is the same on the audit
rows and on the window. Under covariate shift (P(x) moves, P(y|x) stays) that holds; under
concept shift (P(y|x) changes: the same inputs, other labels) the model is just as confident
and the estimate does not move (`tests/unit/test_estimate.py` shows it). Only labels see
concept shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

CALIBRATE_ON = ("audit", "held_out")


@dataclass(frozen=True)
class EstimateRules:
    """The `[estimate]` section: the label-free performance estimate."""

    enabled: bool = True
    # audit: the champion's own audit rows, as logged (unbiased, few right after a promotion);
    # held_out: labeled rows outside its training rows (not feedback), re-scored by it
    calibrate_on: str = "held_out"
    min_audit: int = 30  # calibration labels needed (fewer: no estimate, never a made-up one)
    audit_rows: int = 500  # latest calibration rows used
    bootstrap: int = 100  # bootstrap refits for the interval (0: no interval)
    level: float = 0.9  # interval level
    min_slice_rows: int = 20  # window rows a slice value needs to get its own estimate
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "enabled":
                if not isinstance(value, bool):
                    raise ValueError(f"[estimate] enabled = {value!r}: use true or false")
                continue
            if f.name == "calibrate_on":
                if value not in CALIBRATE_ON:
                    raise ValueError(
                        f"[estimate] calibrate_on = {value!r}: use one of {list(CALIBRATE_ON)}"
                    )
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"[estimate] {f.name} = {value!r} must be a number, 0 or more")
        if self.min_audit < 2:
            raise ValueError(
                f"[estimate] min_audit = {self.min_audit}: a calibration needs at least 2 "
                "audit labels (30 or more is sensible)"
            )
        if self.audit_rows < self.min_audit:
            raise ValueError(
                f"[estimate] audit_rows = {self.audit_rows} is below min_audit = "
                f"{self.min_audit}: the estimate could never be made; raise audit_rows"
            )
        if not 0 < self.level < 1:
            raise ValueError(f"[estimate] level = {self.level!r}: use a level in (0, 1), e.g. 0.9")


def calibrator(confidence: Sequence[float], correct: Sequence[bool]):
    """P(correct | confidence) fitted by isotonic regression (monotone, clipped to [0, 1])."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    return iso.fit(np.asarray(confidence, float), np.asarray(correct, float))


def calibrated(confidence: np.ndarray, correct: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`calibrator(confidence, correct).predict(x)` without the estimator's overhead (about
    5x faster: what the bootstrap's refits use): duplicates pooled, the pool-adjacent-
    violators fit, then linear interpolation clipped at the ends, as IsotonicRegression
    does with out_of_bounds="clip"."""
    from sklearn.isotonic import isotonic_regression

    ux, inverse, counts = np.unique(confidence, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=correct) / counts
    if len(ux) == 1:
        return np.full(len(x), float(np.clip(means[0], 0.0, 1.0)))
    fit = isotonic_regression(means, sample_weight=counts.astype(float), y_min=0.0, y_max=1.0)
    return np.interp(x, ux, fit)


def _slices(attrs: Sequence[Mapping[str, str] | None], min_rows: int) -> dict[str, np.ndarray]:
    """`key=value` -> row mask, for every attribute value with at least `min_rows` rows."""
    keys: dict[str, list[int]] = {}
    for i, a in enumerate(attrs):
        for k, v in (a or {}).items():
            keys.setdefault(f"{k}={v}", []).append(i)
    n = len(attrs)
    out = {}
    for name in sorted(keys):
        rows = keys[name]
        if len(rows) >= max(1, min_rows):
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            out[name] = mask
    return out


def _numbers(p: np.ndarray, boot: np.ndarray | None, level: float) -> dict:
    """Point, interval and sampling sd of one group's mean calibrated confidence."""
    point = float(p.mean())
    if boot is None or not len(boot):
        low = high = None
    else:
        tail = (1 - level) / 2
        low, high = (float(q) for q in np.quantile(boot, [tail, 1 - tail]))
        low, high = min(low, point), max(high, point)
    sd = float(np.sqrt((p * (1 - p)).sum()) / len(p))
    # rounded to 1e-6 (far below the interval's width): the log may hand two homes the same
    # rows in another order, and a float sum's last digit moves with the order; a trigger
    # decision on the estimate must not
    point, sd = round(point, 6), round(sd, 6)
    low, high = (None if v is None else round(v, 6) for v in (low, high))
    return {"accuracy": point, "low": low, "high": high, "n_rows": int(len(p)), "sd_sampling": sd}


def estimate_accuracy(
    audit_confidence: Sequence[float],
    audit_correct: Sequence[bool],
    window_confidence: Sequence[float],
    window_attrs: Sequence[Mapping[str, str] | None] | None = None,
    rules: EstimateRules | None = None,
) -> dict:
    """The expected accuracy of the window's rows, with an interval, overall and per slice.

    Returns {"accuracy", "low", "high", "n_audit", "n_rows", "sd_sampling", "by_slice":
    {"key=value": {...same numbers}}, "reason"}; `accuracy` is None (and `reason` says why)
    when there are fewer than `min_audit` audit labels or no window rows: no number is made up.

    >>> out = estimate_accuracy([0.6] * 5 + [0.9] * 5, [1, 1, 1, 0, 0] + [1] * 4 + [0],
    ...                         [0.6, 0.9], rules=EstimateRules(min_audit=10, bootstrap=0))
    >>> round(out["accuracy"], 3), out["n_audit"], out["n_rows"]
    (0.7, 10, 2)
    """
    rules = rules or EstimateRules()
    conf = np.asarray(audit_confidence, float)
    correct = np.asarray(audit_correct, float)
    window = np.asarray(window_confidence, float)
    if conf.shape != correct.shape:
        raise ValueError(
            f"audit_confidence has {conf.size} values and audit_correct {correct.size}: "
            "pass one of each per audit row"
        )
    attrs = list(window_attrs) if window_attrs is not None else [None] * window.size
    if len(attrs) != window.size:
        raise ValueError(
            f"window_attrs has {len(attrs)} rows for {window.size} confidences: one per row"
        )
    base = {"accuracy": None, "low": None, "high": None, "n_audit": int(conf.size),
            "n_rows": int(window.size), "sd_sampling": None, "by_slice": {}}  # fmt: skip
    if conf.size < rules.min_audit:
        why = (
            f"{conf.size} calibration labels for the champion ({rules.min_audit} needed, "
            f"[estimate] min_audit; calibrate_on = {rules.calibrate_on!r}): wait for labels"
        )
        return {**base, "reason": why}
    if window.size == 0:
        return {**base, "reason": "no recent rows of the champion to estimate on"}
    p = calibrator(conf, correct).predict(window)
    groups = {"": np.ones(window.size, dtype=bool), **_slices(attrs, rules.min_slice_rows)}
    boots: dict[str, list[float]] = {g: [] for g in groups}
    rng = np.random.default_rng(rules.seed)
    for _ in range(int(rules.bootstrap)):
        idx = rng.integers(0, conf.size, conf.size)
        pb = calibrated(conf[idx], correct[idx], window)
        for g, mask in groups.items():
            boots[g].append(float(pb[mask].mean()))
    out = {g: _numbers(p[m], np.asarray(boots[g]) if rules.bootstrap else None, rules.level)
           for g, m in groups.items()}  # fmt: skip
    overall = out.pop("")
    return {**base, **overall, "by_slice": out, "reason": None}
