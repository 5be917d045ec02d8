"""The gate on crafted cards: each rule refuses with its reason and its test, evidence promotes."""

from __future__ import annotations

import dataclasses

import pytest

from evaluation.gate import BETTER_TEST, WORSE_TEST, GateDecision, GateRefused, GateRules, decide
from evaluation.report_card import ModelEval, build_card
from retrain.task import ExpectationResult

RULES = GateRules()


def model(name: str, hits: list[bool], exps: tuple[ExpectationResult, ...] = ()) -> ModelEval:
    n = len(hits)
    return ModelEval(
        name=name,
        version=f"{name}-v",
        n=n,
        accuracy=sum(hits) / n,
        macro_f1=0.9,
        per_class={"a": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": n}},
        slices={},
        ece=0.05,
        reliability=[],
        expectations=exps,
        latency={"p50_ms": 1.0, "p99_ms": 2.0, "rows_per_s": 1000.0},
        hits=tuple(hits),
    )


def rows(b: int, c: int, both: int, neither: int) -> tuple[list[bool], list[bool]]:
    """(challenger hits, champion hits): b rows only the challenger gets right, c only the
    champion, `both` both, `neither` none."""
    ch = [True] * b + [False] * c + [True] * both + [False] * neither
    cp = [False] * b + [True] * c + [True] * both + [False] * neither
    return ch, cp


def card(
    parts: list[tuple[tuple[int, int, int, int], bool, str]],
    *,
    champion: bool = True,
    exps: tuple = (),
    champ_exps: tuple = (),
    suites: list | None = None,
) -> dict:
    """A card from blocks of rows: ((b, c, both, neither), recent?, device)."""
    ch, cp, recent, device = [], [], [], []
    for counts, is_recent, dev in parts:
        a, z = rows(*counts)
        ch += a
        cp += z
        recent += [is_recent] * len(a)
        device += [dev] * len(a)
    c = build_card(
        challenger=model("challenger", ch, exps),
        champion=model("champion", cp, champ_exps) if champion else None,
        task="digits",
        dataset={"id": "ds-1", "policy": "all", "n_train": 900, "n_test": len(ch)},
        eval_set={"description": "eval set"},
        recent=recent,
        row_ids=[f"r{i}" for i in range(len(ch))],
        slice_rows={"device": device},
    )
    if suites is not None:
        c["suites"] = suites
    return c


#: 200 rows: the newest 40 (device b) show a clear gain, the older 160 a small loss
GOOD = [((20, 4, 16, 0), True, "b"), ((2, 5, 150, 3), False, "a")]
PASS = ExpectationResult("rotate-10", True, 0.97, 0.9, "97% unchanged")
FAIL = ExpectationResult("rotate-10", False, 0.6, 0.9, "60% unchanged under 10 degrees")


def test_promotes_on_evidence_and_names_each_test() -> None:
    d = decide(card(GOOD, exps=(PASS,)), RULES)
    assert d.promote is True
    assert d.reasons == (
        "eval set 200 rows (minimum 50): ok",
        "better on recent (newest 40 eval rows) (40 rows): challenger alone right on 20, "
        "champion alone on 4, accuracy +0.400; exact one-sided McNemar p = 0.0008 (alpha 0.1): "
        "better, ok",
        "regression view (older eval rows) (160 rows): challenger alone right on 2, champion "
        "alone on 5, accuracy -0.019 (margin -0.020); worse beyond the margin: p = 0.7108 "
        "(alpha 0.1): ok",
        "slices: 2 tested, none significantly worse (lowest p 1.0000 on device=b, "
        "margin -0.050): ok",
        "expectations: 1/1 passed: ok",
    )
    better = d.checks[1]
    assert better["test"] == BETTER_TEST
    assert (better["n"], better["challenger_only"], better["champion_only"]) == (40, 20, 4)
    # P(X >= 20), X ~ Bin(24, 1/2) = (C(24,20) + ... + C(24,24)) / 2**24
    assert better["p_value"] == (10626 + 2024 + 276 + 24 + 1) / 2**24
    assert d.checks[2]["test"] == WORSE_TEST and d.checks[2]["margin"] == 0.02
    assert [c["name"] for c in d.checks] == [
        "eval_rows",
        "better on recent (newest 40 eval rows)",
        "regression view (older eval rows)",
        "slice device=a",
        "slice device=b",
        "expectation rotate-10",
    ]


def test_a_tie_keeps_the_champion() -> None:
    # the demo promotion: paired 1 vs 1, equal accuracy
    d = decide(card([((1, 1, 130, 8), True, "a")]), RULES)
    assert not d.promote
    assert (
        "better on all eval rows (140 rows): challenger alone right on 1, champion alone on 1, "
        "accuracy +0.000; exact one-sided McNemar p = 0.7500 (alpha 0.1): a tie: keep the "
        "champion" in d.reasons
    )
    assert [c["name"] for c in d.checks if not c["passed"]] == ["better on all eval rows"]


def test_a_lead_within_chance_keeps_the_champion() -> None:
    # 6 won, 3 lost: p = P(X >= 6 | 9, 1/2) = 130 / 512
    d = decide(card([((6, 3, 100, 0), True, "a")]), RULES)
    assert not d.promote
    check = d.checks[1]
    assert check["p_value"] == 130 / 512
    assert check["detail"].endswith(
        "p = 0.2539 (alpha 0.1): not significantly better: keep the champion"
    )
    assert decide(
        card([((6, 3, 100, 0), True, "a")]), dataclasses.replace(RULES, alpha=0.3)
    ).promote


def test_refuses_small_eval_set() -> None:
    d = decide(card([((20, 0, 10, 0), True, "a")]), RULES)
    assert not d.promote
    assert (
        d.reasons[0] == "eval set 30 rows (minimum 50): too few to decide, label more audit samples"
    )
    assert [c["name"] for c in d.checks if not c["passed"]] == ["eval_rows"]


def test_regression_view_refuses_significant_forgetting_beyond_the_margin() -> None:
    # older rows: 4 won, 20 lost of 160 (-0.100): p(drop > 0.02) = 0.0057
    parts = [((20, 4, 16, 0), True, "b"), ((4, 20, 136, 0), False, "a")]
    d = decide(card(parts), RULES)
    assert not d.promote
    assert (
        "regression view (older eval rows) (160 rows): challenger alone right on 4, champion "
        "alone on 20, accuracy -0.100 (margin -0.020); worse beyond the margin: p = 0.0057 "
        "(alpha 0.1): significantly worse, refused" in d.reasons
    )
    failed = [c["name"] for c in d.checks if not c["passed"]]
    # slice a: -0.100 against its wider margin (0.05) has p = 0.0594: refused at alpha 0.1,
    # not at 0.05, where only the regression view's narrower margin refuses
    assert failed == ["regression view (older eval rows)", "slice device=a"]
    strict = decide(card(parts), dataclasses.replace(RULES, alpha=0.05))
    assert [c["name"] for c in strict.checks if not c["passed"]] == [
        "regression view (older eval rows)"
    ]
    # a wider margin (the tabular config forgets the old concept on purpose) lets it through
    loose = dataclasses.replace(RULES, forget_tolerance=0.2, slice_tolerance=0.2)
    assert decide(card(parts), loose).promote


def test_recent_rows_too_few_the_whole_set_decides() -> None:
    d = decide(card(GOOD), dataclasses.replace(RULES, min_recent_rows=41))
    assert [c["name"] for c in d.checks][1:3] == ["better on all eval rows", "slice device=a"]
    assert "regression view: none (the whole eval set is the recent view)" in d.reasons
    assert d.checks[1]["n"] == 200 and d.checks[1]["challenger_only"] == 22


def test_slice_significantly_worse_refuses_and_small_slices_are_skipped() -> None:
    parts = [
        ((20, 2, 18, 0), True, "a"),
        ((1, 12, 27, 0), False, "b"),  # 40 rows, -0.275: p(drop > 0.05) = 0.0083
        ((0, 5, 14, 0), False, "c"),  # 19 rows: too few to test
        ((3, 0, 80, 0), False, "a"),
    ]
    d = decide(card(parts), dataclasses.replace(RULES, forget_tolerance=0.2))
    assert not d.promote
    assert (
        "slice device=b (40 rows): challenger alone right on 1, champion alone on 12, accuracy "
        "-0.275 (margin -0.050); worse beyond the margin: p = 0.0083 (alpha 0.1): "
        "significantly worse, refused" in d.reasons
    )
    assert [c["name"] for c in d.checks if not c["passed"]] == ["slice device=b"]
    assert not any("device=c" in c["name"] for c in d.checks)


def test_refuses_failed_expectation() -> None:
    d = decide(card(GOOD, exps=(FAIL,)), RULES)
    assert not d.promote
    detail = (
        "expectation rotate-10 failed (the champion has no result): 60% unchanged under 10 degrees"
    )
    assert detail in d.reasons
    failed = [c for c in d.checks if not c["passed"]]
    assert failed == [
        {
            "name": "expectation rotate-10",
            "passed": False,
            "value": 0.6,
            "limit": 0.9,
            "detail": detail,
        }
    ]


def test_expectation_the_champion_meets_cannot_be_broken() -> None:
    d = decide(card(GOOD, exps=(FAIL,), champ_exps=(PASS,)), RULES)
    assert not d.promote
    assert (
        "expectation rotate-10 failed (the champion meets it): 60% unchanged under 10 degrees"
        in d.reasons
    )


def test_expectation_both_fail_is_relative_to_the_champion() -> None:
    worse = ExpectationResult("rotate-10", False, 0.60, 0.9, "60% unchanged")
    champ_fail = ExpectationResult("rotate-10", False, 0.64, 0.9, "64% unchanged")
    much_worse = ExpectationResult("rotate-10", False, 0.58, 0.9, "58% unchanged")
    d = decide(card(GOOD, exps=(worse,), champ_exps=(champ_fail,)), RULES)
    assert d.promote  # 0.60 >= 0.64 - 0.05
    assert (
        "expectation rotate-10 failed by both models: 0.600 vs champion 0.640 (-0.040, "
        "tolerance -0.050): not worse, ok; 60% unchanged" in d.reasons
    )
    d = decide(card(GOOD, exps=(much_worse,), champ_exps=(champ_fail,)), RULES)
    assert not d.promote  # 0.58 < 0.64 - 0.05
    (check,) = [c for c in d.checks if not c["passed"]]
    assert check["name"] == "expectation rotate-10" and check["value"] == 0.58


def test_failed_expectation_ignored_when_not_required() -> None:
    rules = dataclasses.replace(RULES, require_expectations=False)
    d = decide(card(GOOD, exps=(PASS, FAIL)), rules)
    assert d.promote
    assert "expectations: 1/2 failed, ignored (require_expectations=False)" in d.reasons


def test_required_suites_must_pass_reported_ones_do_not_block() -> None:
    suites = [
        {"name": "thick-3s", "required": True, "passed": False, "challenger": 0.5,
         "detail": "0.500 vs champion 0.900"},
        {"name": "faint", "required": False, "passed": False, "challenger": 0.1},
        {"name": "clean", "required": True, "passed": True, "challenger": 1.0},
    ]  # fmt: skip
    d = decide(card(GOOD, suites=suites), RULES)
    assert not d.promote
    assert [c["name"] for c in d.checks if not c["passed"]] == ["suite thick-3s"]
    assert "suite thick-3s (required): failed: 0.500 vs champion 0.900" in d.reasons
    assert "suite clean (required): ok" in d.reasons
    assert not any("faint" in c["name"] for c in d.checks)
    first = decide(card(GOOD, champion=False, suites=suites[:1]), RULES)
    assert not first.promote  # the first model too


def test_no_champion_needs_rows_and_expectations_only() -> None:
    d = decide(card(GOOD, champion=False, exps=(PASS,)), RULES)
    assert d.promote
    assert [c["name"] for c in d.checks] == ["eval_rows", "expectation rotate-10"]
    assert d.reasons[1].startswith("no champion yet")
    refused = decide(card([((5, 0, 5, 0), True, "a")], champion=False, exps=(FAIL,)), RULES)
    assert not refused.promote
    assert [c["name"] for c in refused.checks if not c["passed"]] == [
        "eval_rows",
        "expectation rotate-10",
    ]


def test_card_rows_carry_per_row_correctness() -> None:
    c = card([((1, 1, 1, 1), True, "a")])
    assert c["rows"] == {
        "request_id": ["r0", "r1", "r2", "r3"],
        "challenger_hit": [1, 0, 1, 0],
        "champion_hit": [0, 1, 1, 0],
        "recent": [1, 1, 1, 1],
    }


def test_decision_to_dict_and_gate_refused() -> None:
    d = decide(card([((1, 1, 130, 8), True, "a")]), RULES)
    as_dict = d.to_dict()
    assert as_dict["promote"] is False
    assert isinstance(as_dict["reasons"], list) and isinstance(as_dict["checks"], list)
    err = GateRefused(d)
    assert err.decision is d
    assert "a tie: keep the champion" in str(err)
    with pytest.raises(GateRefused):
        raise err


def test_existing_gate_key_is_ignored() -> None:
    c = card(GOOD)
    c["gate"] = GateDecision(False, ("old",), ()).to_dict()
    assert decide(c, RULES).promote


def test_bad_card_and_rules() -> None:
    with pytest.raises(ValueError, match="models.challenger"):
        decide({"models": {}}, RULES)
    no_pairs = card(GOOD)
    no_pairs["paired"] = None
    with pytest.raises(ValueError, match="card has no paired counts"):
        decide(no_pairs, RULES)
    with pytest.raises(ValueError, match=r"\[gate\] alpha = 0: use a level in \(0, 1\)"):
        GateRules(alpha=0)
    with pytest.raises(ValueError, match=r"\[gate\] forget_tolerance = -0.1: use a share"):
        GateRules(forget_tolerance=-0.1)
    with pytest.raises(ValueError, match=r"\[gate\] min_eval_rows = 0: use a whole number"):
        GateRules(min_eval_rows=0)
    with pytest.raises(ValueError, match=r"\[gate\] enabled = 'no': use true or false"):
        GateRules(enabled="no")


def test_disabled_gate_promotes_a_failing_challenger_and_says_why() -> None:
    c = card([((1, 1, 20, 8), True, "a")], exps=(FAIL,))
    shut = decide(c, RULES)
    assert not shut.promote
    d = decide(c, dataclasses.replace(RULES, enabled=False))
    assert d.promote
    assert d.reasons[0] == (
        "gate disabled by [gate] enabled = false: every challenger is promoted; the checks "
        "below are reported, not applied"
    )
    assert d.reasons[1:] == shut.reasons and d.checks == shut.checks  # what it would have said
    assert [x["name"] for x in d.checks if not x["passed"]] == [
        "eval_rows",
        "better on all eval rows",
        "expectation rotate-10",
    ]
