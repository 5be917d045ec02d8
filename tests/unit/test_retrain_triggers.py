"""Trigger rules on hand-made inputs, with exact expected outputs."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.triggers import (
    TriggerDecision,
    combine,
    drift_trigger,
    performance_trigger,
    periodic_trigger,
    wilson_interval,
)


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 5) == pytest.approx((0.0, 0.4345), abs=1e-4)
    assert wilson_interval(50, 50)[1] == 1.0


def test_performance_fires_below_threshold() -> None:
    correct = np.array([True] * 7 + [False] * 3)
    d = performance_trigger(correct, threshold=0.8, min_labels=10)
    assert d.fire and d.kind == "performance"
    assert d.numbers["accuracy"] == pytest.approx(0.7) and d.numbers["n"] == 10
    assert d.numbers["ci_low"] == pytest.approx(0.3968, abs=1e-4)
    assert d.reasons == ("audit accuracy 0.700 [0.397, 0.892] on 10 labels < threshold 0.800",)


def test_performance_holds_at_or_above_threshold_and_with_few_labels() -> None:
    assert not performance_trigger(
        np.array([True] * 8 + [False] * 2), 0.8, 10
    ).fire  # 0.8 is not < 0.8
    few = performance_trigger(np.array([False] * 9), 0.8, 10)
    assert not few.fire and "too few to judge (need 10)" in few.reasons[0]
    none = performance_trigger(np.array([], dtype=bool), 0.8, 10)
    assert (
        not none.fire
        and none.numbers["accuracy"] is None
        and none.reasons == ("no audit labels yet",)
    )


@pytest.mark.parametrize(("threshold", "min_labels"), [(0.0, 10), (1.5, 10), (0.8, 0)])
def test_performance_checks_its_parameters(threshold: float, min_labels: int) -> None:
    with pytest.raises(ValueError):
        performance_trigger(np.array([True]), threshold, min_labels)


def test_drift_trigger_fires_on_drift_or_confidence_drop() -> None:
    both = drift_trigger(True, 0.625, confidence_drop=0.2, max_confidence_drop=0.1)
    assert both.fire and both.reasons == (
        "dataset drift: 62% of features drifted",
        "mean confidence fell by 0.200 > 0.100 allowed",
    )
    quiet = drift_trigger(False, 0.1, confidence_drop=0.05, max_confidence_drop=0.1)
    assert not quiet.fire and quiet.numbers == {
        "dataset_drift": False,
        "drift_share": 0.1,
        "confidence_drop": 0.05,
        "max_confidence_drop": 0.1,
    }
    with pytest.raises(ValueError, match="drift_share"):
        drift_trigger(False, 1.2, 0.0, 0.1)


def test_periodic_trigger() -> None:
    assert periodic_trigger(10, 10) == TriggerDecision(
        True,
        "periodic",
        ("10 batches since the last retrain >= 10",),
        {"batches_since_retrain": 10, "every": 10},
    )
    assert not periodic_trigger(9, 10).fire
    assert periodic_trigger(1000, 0).reasons == ("periodic retraining is off",)
    with pytest.raises(ValueError, match="or 0 to turn periodic retraining off"):
        periodic_trigger(1, -1)


def test_combine_fires_if_any_and_keeps_all_reasons() -> None:
    perf = performance_trigger(np.array([False] * 10), 0.8, 10)
    drift = drift_trigger(True, 0.5, 0.0, 0.1)
    periodic = periodic_trigger(2, 10)
    d = combine([periodic, perf, drift])
    assert d.fire and d.kind == "performance+drift"
    assert d.reasons == perf.reasons + drift.reasons + periodic.reasons
    assert set(d.numbers) == {"performance", "drift", "periodic"}
    nothing = combine([periodic])
    assert not nothing.fire and nothing.kind == "none"
    assert combine([]) == TriggerDecision(False, "none", (), {})


def test_confidence_trigger_fires_only_past_the_allowed_drop_with_enough_rows():
    from retrain.triggers import confidence_trigger

    fired = confidence_trigger(0.95, 0.80, n_current=400, max_drop=0.1)
    assert fired.fire and fired.kind == "confidence"
    assert fired.numbers["drop"] == pytest.approx(0.15)
    at_limit = confidence_trigger(0.95, 0.85, n_current=400, max_drop=0.1)
    assert not at_limit.fire  # a drop of exactly the allowance does not fire
    few = confidence_trigger(0.95, 0.10, n_current=99, max_drop=0.1, min_rows=100)
    assert not few.fire and "100 needed" in few.reasons[0]
    with pytest.raises(ValueError, match="max_drop"):
        confidence_trigger(0.9, 0.8, n_current=400, max_drop=-0.1)


def test_recovery_episode_lifecycle_and_off_switch() -> None:
    from retrain.triggers import Episode, TriggerDecision, recovery_step

    fire = TriggerDecision(True, "drift", ("drift",), {})
    quiet = TriggerDecision(False, "none", ("quiet",), {})
    # a firing rule opens the episode at the champion's pre-drift confidence
    d, ep = recovery_step(Episode(), fire, 0.96, 0.70, 400, 0.05)
    assert d is fire and ep == Episode(True, 0.96)
    # a new champion fires again: the baseline stays the pre-drift one, not the new champion's
    d, ep = recovery_step(ep, fire, 0.80, 0.75, 400, 0.05)
    assert ep == Episode(True, 0.96)
    # quiet rules, still 0.06 below: recovery fires, with the numbers
    d, ep = recovery_step(ep, quiet, 0.85, 0.90, 400, 0.05)
    assert (d.fire, d.kind) == (True, "recovery") and ep.open
    assert d.numbers["gap"] == pytest.approx(0.06)
    # too few rows to judge: nothing fires, the episode stays open
    d, ep = recovery_step(ep, quiet, 0.85, 0.50, 50, 0.05)
    assert not d.fire and ep.open
    # back within 0.05: closed
    d, ep = recovery_step(ep, quiet, 0.85, 0.92, 400, 0.05)
    assert not d.fire and ep == Episode()
    assert "recovered: mean confidence 0.920 within 0.050 of 0.960" in d.reasons[-1]
    # recovery_drop 0 turns it off: rules pass through, no episode is kept
    d, ep = recovery_step(Episode(True, 0.96), quiet, 0.85, 0.50, 400, 0.0)
    assert d is quiet and ep == Episode()
