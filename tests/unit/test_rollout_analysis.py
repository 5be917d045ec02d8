"""The rollout analysis: exact decisions, reasons and numbers on hand-made evidence."""

from __future__ import annotations

import math

import pytest

from evaluation.rollout import (
    Analysis,
    ArmEvidence,
    Evidence,
    RolloutRules,
    analyze,
    prediction_shift,
    two_proportion_z,
)

RULES = RolloutRules(min_labels=20, min_predictions=100)
COUNTS = {"0": 50, "1": 50}


def arm(labeled=50, correct=45, predictions=200, conf=0.9, ref=0.9, counts=None, **stats):
    base = {"requests": predictions, "errors": 0, "p99_ms": 10.0}
    return ArmEvidence(
        predictions=predictions, labeled=labeled, correct=correct, mean_confidence=conf,
        reference_confidence=ref, class_counts=counts or COUNTS, **{**base, **stats},
    )  # fmt: skip


def test_two_proportion_z_exact():
    z, p = two_proportion_z(30, 50, 45, 50)
    # pooled 0.75, se = sqrt(0.75 * 0.25 * 0.04) = 0.0866: z = -0.3 / 0.0866
    assert z == pytest.approx(-0.3 / math.sqrt(0.75 * 0.25 * 0.04), rel=1e-12)
    assert p == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)), rel=1e-12)
    assert round(p, 6) == 0.000266
    assert two_proportion_z(10, 10, 10, 10) == (0.0, 0.5)


def test_prediction_shift_is_total_variation():
    assert prediction_shift({"0": 50, "1": 50}, {"0": 80, "1": 20}) == 0.3
    assert prediction_shift({"0": 10}, {"1": 10}) == 1.0
    assert prediction_shift({}, {"0": 1}) is None


def test_equal_arms_advance_with_the_numbers():
    a = analyze(RULES, Evidence(canary=arm(), champion=arm()))
    assert a.decision == "advance"
    assert a.reasons == [
        "canary accuracy 0.900 on 50 labels vs champion 0.900 on 50: not significantly "
        "worse (p = 0.5000)"
    ]
    assert a.numbers["p_value"] == 0.5 and a.numbers["shift"] == 0.0
    assert a.numbers["canary_error_rate"] == 0.0 and a.numbers["p99_ratio"] == 1.0


def test_significantly_worse_canary_rolls_back():
    a = analyze(RULES, Evidence(canary=arm(correct=30), champion=arm(correct=45)))
    assert a.decision == "rollback"
    assert a.reasons == [
        "canary less accurate: 0.600 on 50 labels vs 0.900 on 50 (one-sided p = 0.0003 < "
        "alpha 0.05)"
    ]
    assert a.numbers["p_value"] == pytest.approx(two_proportion_z(30, 50, 45, 50)[1])


def test_slightly_worse_but_not_significant_advances():
    a = analyze(RULES, Evidence(canary=arm(correct=42), champion=arm(correct=45)))
    assert a.decision == "advance"
    assert 0.05 < a.numbers["p_value"] < 0.5


def test_no_labels_holds_never_advances():
    a = analyze(RULES, Evidence(canary=arm(labeled=0, correct=0), champion=arm()))
    assert a == Analysis(
        "hold",
        [
            "too few labels: canary 0, champion 50 (< min_labels 20 per arm, audit and feedback "
            "only)"
        ],  # fmt: skip
        a.numbers,
    )
    assert a.numbers["canary_accuracy"] is None


def test_too_few_predictions_holds():
    a = analyze(RULES, Evidence(canary=arm(predictions=40), champion=arm()))
    assert a.decision == "hold"
    assert a.reasons[0].startswith("too few predictions: canary 40, champion 200")


def test_stats_missing_holds_and_errors_or_latency_roll_back():
    ok = arm()
    missing = analyze(RULES, Evidence(ok, ok, stats_problem="ConnectError: refused"))
    assert missing.decision == "hold"
    assert missing.reasons == ["serving stats unavailable: ConnectError: refused"]
    errors = analyze(RULES, Evidence(arm(errors=5), ok))
    assert errors.decision == "rollback"
    assert errors.reasons == ["canary error rate 0.025 on 200 requests (> max_error_rate 0.01)"]
    slow = analyze(RULES, Evidence(arm(p99_ms=16.0), ok))
    assert slow.decision == "rollback" and slow.numbers["p99_ratio"] == 1.6
    assert "1.60x the champion's 10.0 ms" in slow.reasons[0]
    unused = analyze(RULES, Evidence(arm(errors=50), ok, stats_used=False))
    assert unused.decision == "advance" and unused.numbers["stats"] == "not used"


def test_label_free_estimate_rolls_back_a_much_less_confident_canary():
    a = analyze(RULES, Evidence(arm(conf=0.7, labeled=0, correct=0), arm(conf=0.88)))
    assert a.decision == "rollback"
    assert a.numbers["confidence_gap"] == pytest.approx(0.18)
    assert "confidence fell 0.180 more than the champion's" in a.reasons[0]


def test_shift_without_labels_holds_and_labels_override_it():
    skew = {"0": 90, "1": 10}
    a = analyze(RULES, Evidence(arm(labeled=5, correct=5, counts=skew), arm()))
    assert a.decision == "hold" and a.numbers["shift"] == 0.4
    assert any("shift 0.400 > max_shift 0.25" in r for r in a.reasons)
    b = analyze(RULES, Evidence(arm(counts=skew), arm()))
    assert b.decision == "advance"


def test_max_holds_turns_a_hold_into_a_rollback():
    rules = RolloutRules(min_labels=20, min_predictions=100, max_holds=3)
    none = arm(labeled=0, correct=0)
    assert analyze(rules, Evidence(none, arm(), holds=2)).decision == "hold"
    a = analyze(rules, Evidence(none, arm(), holds=3))
    assert a.decision == "rollback" and a.reasons[0].startswith("held 4 times at this step")
    forever = RolloutRules(min_labels=20, min_predictions=100, max_holds=0)
    assert analyze(forever, Evidence(none, arm(), holds=99)).decision == "hold"


def test_ab_mode_uses_the_sequential_test():
    rules = RolloutRules(mode="ab", min_labels=20, min_predictions=100)
    better = analyze(rules, Evidence(arm(labeled=400, correct=360), arm(labeled=400, correct=300)))
    assert better.decision == "advance" and better.numbers["ab_p_value"] <= 0.05
    worse = analyze(rules, Evidence(arm(labeled=400, correct=300), arm(labeled=400, correct=360)))
    assert worse.decision == "rollback" and worse.reasons[0].startswith("A/B: canary significantly")
    even = analyze(rules, Evidence(arm(labeled=400, correct=360), arm(labeled=400, correct=360),
                                   holds=50))  # fmt: skip
    assert even.decision == "hold"  # no max_holds in ab mode: it holds until it decides
    capped = RolloutRules(mode="ab", ab_max_labels=400)
    assert analyze(capped, Evidence(arm(labeled=400, correct=360),
                                    arm(labeled=400, correct=360))).decision == "rollback"  # fmt: skip
    assert rules.weights == (0.5, 1.0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mode", "blue-green", "[rollout] mode = 'blue-green' is not one of ['canary', 'ab']"),
        ("steps", (5, 50), "[rollout] steps = [5, 50] must be increasing percentages"),
        ("steps", (50, 5, 100), "[rollout] steps = [50, 5, 100]"),
        ("steps", (), "[rollout] steps = []"),
        ("min_labels", 0, "[rollout] min_labels = 0 must be a whole number >= 1"),
        ("alpha", 0.7, "[rollout] alpha = 0.7 must lie in (0, 0.5)"),
        ("max_error_rate", 2, "[rollout] max_error_rate = 2 must lie between 0 and 1"),
        ("max_p99_ratio", 0.5, "[rollout] max_p99_ratio = 0.5 must be >= 1"),
        ("max_holds", -1, "[rollout] max_holds = -1"),
        ("ab_split", 100, "[rollout] ab_split = 100 must lie in (0, 100)"),
        ("enabled", "yes", "[rollout] enabled = 'yes': use true or false"),
        ("stats_url", "ftp://x", "[rollout] stats_url = 'ftp://x' must be"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(key, value, message):
    with pytest.raises(ValueError) as err:
        RolloutRules(**{key: value})
    assert message in str(err.value)
    assert "use" in str(err.value)


def test_docstring_examples():
    import doctest

    import evaluation.rollout
    import evaluation.sequential

    for module in (evaluation.rollout, evaluation.sequential):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
