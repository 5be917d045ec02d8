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


# -- assess: the [trigger] rules on evidence gathered by the caller ------------------------------


def _old_evaluate_triggers(cfg, ev, episode):
    """`flows/retrain_triggers.evaluate_triggers` before `assess`, after its evidence
    gathering, transcribed line by line: what `assess` must equal with every rule on."""
    from retrain.triggers import (
        combine,
        confidence_trigger,
        drift_trigger,
        performance_trigger,
        periodic_trigger,
        recovery_step,
    )

    decisions = [performance_trigger(ev.audit_correct, cfg.accuracy_threshold, cfg.min_labels)]
    reference, conf = ev.reference_confidence, ev.recent_confidence
    if reference is not None:
        decisions.append(
            confidence_trigger(
                float(reference),
                float(conf.mean()) if len(conf) else 0.0,
                len(conf),
                cfg.confidence_drop,
                min_rows=ev.confidence_min_rows,
            )
        )
    drift = ev.drift or {}
    if cfg.on_drift and drift.get("status") in {"ok", "drift"}:
        decisions.append(
            drift_trigger(
                bool(drift["dataset_drift"]),
                float(drift["drift_share"]),
                float(drift["confidence_drop"]),
                cfg.confidence_drop,
            )
        )
    if cfg.every_rows:
        decisions.append(periodic_trigger(ev.served, cfg.every_rows))
    return recovery_step(
        episode,
        combine(decisions),
        reference,
        float(conf.mean()) if len(conf) else 0.0,
        len(conf),
        cfg.recovery_drop,
        min_rows=ev.confidence_min_rows,
    )


def _evidence(n_right, n_wrong, reference, conf, n_conf, drift, served):
    from retrain.trigger_rules import TriggerEvidence

    return TriggerEvidence(
        audit_correct=np.array([True] * n_right + [False] * n_wrong, dtype=bool),
        reference_confidence=reference,
        recent_confidence=np.full(n_conf, conf, dtype=np.float32),
        drift=drift,
        served=served,
        confidence_min_rows=100,
    )


DRIFTED = {"status": "drift", "champion": "v1", "dataset_drift": True, "drift_share": 0.6,
           "confidence_drop": 0.02}  # fmt: skip
QUIET = {"status": "ok", "champion": "v1", "dataset_drift": False, "drift_share": 0.1,
         "confidence_drop": 0.01}  # fmt: skip


def test_assess_equals_the_old_evaluate_triggers_on_hand_made_evidence():
    from itertools import product

    from retrain.trigger_rules import TriggerRules, assess
    from retrain.triggers import Episode

    checked = fired = 0
    for (right, wrong), reference, (conf, n_conf), drift, every, served, episode, rdrop, on_drift in product(
        [(0, 0), (10, 2), (15, 10), (40, 2)],
        [None, 0.95],
        [(0.9, 0), (0.9, 400), (0.7, 400), (0.7, 50)],
        [None, DRIFTED, QUIET],
        [0, 300],
        [100, 300],
        [Episode(), Episode(open=True, baseline=0.97)],
        [0.0, 0.05],
        [True, False],
    ):  # fmt: skip
        rules = TriggerRules(every_rows=every, recovery_drop=rdrop, on_drift=on_drift)
        ev = _evidence(right, wrong, reference, conf, n_conf, drift, served)
        (d, e), (old_d, old_e) = (
            assess(rules, ev, episode),
            _old_evaluate_triggers(rules, ev, episode),
        )
        # without gate verdicts, settling and back-off never act: the same decision and episode
        assert (d, e.open, e.baseline) == (old_d, old_e.open, old_e.baseline), (rules, ev, episode)
        assert (e.refusals, e.settled, e.promoted) == (0, None, False)
        new = (d, e)
        checked += 1
        fired += new[0].fire
    assert checked == 4 * 2 * 4 * 3 * 2 * 2 * 2 * 2 * 2 and 0 < fired < checked


def test_assess_values_on_one_case_by_hand():
    from retrain.trigger_rules import TriggerRules, assess
    from retrain.triggers import Episode

    # 15/25 audit right (0.600 < 0.85), confidence 0.70 vs 0.95 on 400 rows, drift, 300 served
    ev = _evidence(15, 10, 0.95, 0.7, 400, DRIFTED, 300)
    d, e = assess(TriggerRules(every_rows=300), ev, Episode())
    assert d.fire and d.kind == "performance+confidence+drift+periodic"
    assert d.numbers["performance"]["accuracy"] == 0.6
    assert d.numbers["confidence"]["drop"] == pytest.approx(0.25, abs=1e-6)
    # the drift verdict that opened the episode is remembered (a later one must go beyond it)
    assert e == Episode(open=True, baseline=0.95, onset_share=0.6, onset_champion="v1")
    # every rule off: nothing fires, and with recovery off the episode closes
    off = TriggerRules(on_performance=False, on_confidence=False, on_drift=False, recovery_drop=0)
    d, e = assess(off, ev, Episode(open=True, baseline=0.97))
    assert (d.fire, d.kind, d.numbers, e) == (False, "none", {}, Episode())
    # recovery alone keeps an open episode firing while confidence is far below the baseline
    quiet = TriggerRules(on_performance=False, on_confidence=False, on_drift=False)
    d, e = assess(quiet, ev, Episode(open=True, baseline=0.97))
    assert (d.fire, d.kind, e.open) == (True, "recovery", True)
    assert d.numbers["gap"] == pytest.approx(0.27, abs=1e-6)


def test_assess_skips_the_confidence_rule_without_a_reference():
    from retrain.trigger_rules import TriggerRules, assess
    from retrain.triggers import Episode

    d, _ = assess(TriggerRules(), _evidence(40, 2, None, 0.5, 400, None, 0), Episode())
    assert set(d.numbers) == {"performance"} and not d.fire
