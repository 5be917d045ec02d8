"""The gate on crafted cards: each rule refuses with its reason, all pass promotes."""

from __future__ import annotations

import dataclasses

import pytest

from evaluation.gate import GateDecision, GateRefused, GateRules, decide
from evaluation.report_card import ModelEval, build_card
from retrain.task import ExpectationResult

RULES = GateRules()


def model(
    name: str,
    *,
    n: int = 200,
    acc: float = 0.9,
    f1: float = 0.9,
    slices: dict | None = None,
    exps: tuple[ExpectationResult, ...] = (),
) -> ModelEval:
    return ModelEval(
        name=name,
        version=f"{name}-v",
        n=n,
        accuracy=acc,
        macro_f1=f1,
        per_class={"a": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": n}},
        slices=slices or {},
        ece=0.05,
        reliability=[],
        expectations=exps,
        latency={"p50_ms": 1.0, "p99_ms": 2.0, "rows_per_s": 1000.0},
    )


def card(challenger: ModelEval, champion: ModelEval | None) -> dict:
    return build_card(
        challenger=challenger,
        champion=champion,
        task="digits",
        dataset={"id": "ds-1", "policy": "all", "n_train": 900, "n_test": 200},
        eval_set={"description": "audit labels"},
    )


def sl(**values: tuple[int, float]) -> dict:
    return {"device": {k: {"n": n, "accuracy": a} for k, (n, a) in values.items()}}


PASS = ExpectationResult("rotate-10", True, 0.97, 0.9, "97% unchanged")
FAIL = ExpectationResult("rotate-10", False, 0.6, 0.9, "60% unchanged under 10 degrees")


def test_promotes_when_all_pass() -> None:
    d = decide(
        card(
            model(
                "challenger",
                acc=0.912,
                f1=0.905,
                slices=sl(a=(100, 0.9), b=(100, 0.92), c=(5, 0.2)),
                exps=(PASS,),
            ),
            model(
                "champion", acc=0.874, f1=0.870, slices=sl(a=(100, 0.88), b=(100, 0.93), c=(5, 1.0))
            ),
        ),
        RULES,
    )
    assert d.promote is True
    assert d.reasons == (
        "eval set 200 rows (minimum 50): ok",
        "accuracy 0.912 vs champion 0.874 (+0.038, tolerance -0.005): ok",
        "macro_f1 0.905 vs champion 0.870 (+0.035, tolerance -0.005): ok",
        "slices: 2 compared, 1 skipped (< 20 rows), worst device=b (-0.010, tolerance -0.050): ok",
        "expectations: 1/1 passed: ok",
    )
    assert [c["name"] for c in d.checks] == [
        "eval_rows",
        "accuracy",
        "macro_f1",
        "slice device=a",
        "slice device=b",
        "expectation rotate-10",
    ]
    assert all(set(c) == {"name", "passed", "value", "limit", "detail"} for c in d.checks)
    assert d.checks[1]["limit"] == pytest.approx(0.869)


def test_refuses_small_eval_set() -> None:
    d = decide(card(model("challenger", n=30), model("champion", n=30)), RULES)
    assert not d.promote
    assert (
        d.reasons[0] == "eval set 30 rows (minimum 50): too few to decide, label more audit samples"
    )
    assert [c["name"] for c in d.checks if not c["passed"]] == ["eval_rows"]


def test_refuses_accuracy_regression() -> None:
    d = decide(card(model("challenger", acc=0.85), model("champion", acc=0.874)), RULES)
    assert not d.promote
    assert "accuracy 0.850 vs champion 0.874 (-0.024, tolerance -0.005): regressed" in d.reasons
    assert [c["name"] for c in d.checks if not c["passed"]] == ["accuracy"]


def test_within_tolerance_is_ok() -> None:
    d = decide(card(model("challenger", acc=0.870), model("champion", acc=0.874)), RULES)
    assert d.promote
    assert "accuracy 0.870 vs champion 0.874 (-0.004, tolerance -0.005): ok" in d.reasons


def test_exactly_at_tolerance_is_ok() -> None:
    d = decide(card(model("challenger", acc=0.895), model("champion", acc=0.9)), RULES)
    assert d.promote


def test_refuses_macro_f1_regression() -> None:
    d = decide(card(model("challenger", f1=0.80), model("champion", f1=0.90)), RULES)
    assert not d.promote
    assert "macro_f1 0.800 vs champion 0.900 (-0.100, tolerance -0.005): regressed" in d.reasons


def test_refuses_slice_regression_but_ignores_small_slices() -> None:
    d = decide(
        card(
            model("challenger", slices=sl(a=(100, 0.95), b=(40, 0.70), c=(19, 0.0))),
            model("champion", slices=sl(a=(100, 0.90), b=(40, 0.80), c=(19, 1.0))),
        ),
        RULES,
    )
    assert not d.promote
    assert (
        "slice device=b accuracy 0.700 vs champion 0.800 (-0.100, tolerance -0.050, 40 rows): regressed"
        in d.reasons
    )
    assert [c["name"] for c in d.checks if not c["passed"]] == ["slice device=b"]
    assert not any("device=c" in c["name"] for c in d.checks)


def test_refuses_failed_expectation() -> None:
    d = decide(card(model("challenger", exps=(FAIL,)), model("champion")), RULES)
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
    d = decide(card(model("challenger", exps=(FAIL,)), model("champion", exps=(PASS,))), RULES)
    assert not d.promote
    assert (
        "expectation rotate-10 failed (the champion meets it): 60% unchanged under 10 degrees"
        in d.reasons
    )


def test_expectation_both_fail_is_relative_to_the_champion() -> None:
    # the world moved: neither model meets the 0.9 bar any more
    worse = ExpectationResult("rotate-10", False, 0.60, 0.9, "60% unchanged")
    champ_fail = ExpectationResult("rotate-10", False, 0.64, 0.9, "64% unchanged")
    much_worse = ExpectationResult("rotate-10", False, 0.58, 0.9, "58% unchanged")
    d = decide(
        card(model("challenger", exps=(worse,)), model("champion", exps=(champ_fail,))), RULES
    )
    assert d.promote  # 0.60 >= 0.64 - 0.05
    assert (
        "expectation rotate-10 failed by both models: 0.600 vs champion 0.640 (-0.040, "
        "tolerance -0.050): not worse, ok; 60% unchanged" in d.reasons
    )
    d = decide(
        card(model("challenger", exps=(much_worse,)), model("champion", exps=(champ_fail,))), RULES
    )
    assert not d.promote  # 0.58 < 0.64 - 0.05
    (check,) = [c for c in d.checks if not c["passed"]]
    assert check["name"] == "expectation rotate-10" and check["value"] == 0.58


def test_no_champion_keeps_expectations_absolute() -> None:
    d = decide(card(model("challenger", exps=(FAIL,)), None), RULES)
    assert not d.promote


def test_failed_expectation_ignored_when_not_required() -> None:
    rules = dataclasses.replace(RULES, require_expectations=False)
    d = decide(card(model("challenger", exps=(PASS, FAIL)), model("champion")), rules)
    assert d.promote
    assert "expectations: 1/2 failed, ignored (require_expectations=False)" in d.reasons


def test_no_champion_needs_rows_and_expectations_only() -> None:
    d = decide(card(model("challenger", acc=0.3, f1=0.2, exps=(PASS,)), None), RULES)
    assert d.promote
    assert [c["name"] for c in d.checks] == ["eval_rows", "expectation rotate-10"]
    assert d.reasons[1].startswith("no champion yet")
    refused = decide(card(model("challenger", n=10, exps=(FAIL,)), None), RULES)
    assert not refused.promote
    assert [c["name"] for c in refused.checks if not c["passed"]] == [
        "eval_rows",
        "expectation rotate-10",
    ]


def test_decision_to_dict_and_gate_refused() -> None:
    d = decide(card(model("challenger", acc=0.5), model("champion")), RULES)
    as_dict = d.to_dict()
    assert as_dict["promote"] is False
    assert isinstance(as_dict["reasons"], list) and isinstance(as_dict["checks"], list)
    err = GateRefused(d)
    assert err.decision is d
    assert "accuracy 0.500 vs champion 0.900" in str(err)
    with pytest.raises(GateRefused):
        raise err


def test_existing_gate_key_is_ignored() -> None:
    c = card(model("challenger"), model("champion"))
    c["gate"] = GateDecision(False, ("old",), ()).to_dict()
    assert decide(c, RULES).promote


def test_bad_card_and_rules() -> None:
    with pytest.raises(ValueError, match="models.challenger"):
        decide({"models": {}}, RULES)
    with pytest.raises(ValueError, match=r"\[gate\] tolerance = -0.1: use a share in \[0, 1\)"):
        GateRules(tolerance=-0.1)
    with pytest.raises(ValueError, match=r"\[gate\] min_eval_rows = 0: use a whole number"):
        GateRules(min_eval_rows=0)
    with pytest.raises(ValueError, match=r"\[gate\] enabled = 'no': use true or false"):
        GateRules(enabled="no")


def test_disabled_gate_promotes_a_failing_challenger_and_says_why() -> None:
    c = card(model("challenger", n=30, acc=0.5, f1=0.5, exps=(FAIL,)), model("champion", n=30))
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
        "accuracy",
        "macro_f1",
        "expectation rotate-10",
    ]


def hits_model(name: str, hits: list[bool], recent: list[bool] | None) -> ModelEval:
    """A ModelEval with real per-row hits (the paired comparison reads them)."""
    from evaluation.metrics import accuracy

    m = model(name, n=len(hits), acc=accuracy([1] * len(hits), [int(h) for h in hits]), f1=0.9)
    r = None
    if recent is not None:
        picked = [h for h, f in zip(hits, recent, strict=True) if f]
        r = {"n": len(picked), "accuracy": sum(picked) / len(picked)}
    return dataclasses.replace(m, hits=tuple(hits), recent=r)


def paired_card(chall: list[bool], champ: list[bool], recent: list[bool] | None) -> dict:
    return build_card(
        challenger=hits_model("challenger", chall, recent),
        champion=hits_model("champion", champ, recent),
        task="digits",
        dataset={},
        eval_set={},
        recent=recent,
    )


def test_recent_rows_decide_and_older_rows_may_lose_within_forget_tolerance() -> None:
    # 200 eval rows, the newest 40 are today's traffic: the champion is stale there
    recent = [False] * 160 + [True] * 40
    champ = [True] * 156 + [False] * 4 + [False] * 20 + [True] * 20  # old 0.975, recent 0.50
    chall = [True] * 153 + [False] * 7 + [True] * 36 + [False] * 4  # old 0.956, recent 0.90
    c = paired_card(chall, champ, recent)
    pair = c["paired"]["recent"]
    assert (pair["n"], pair["challenger_only"], pair["champion_only"]) == (40, 20, 4)
    assert pair["z"] == pytest.approx(16 / 24**0.5)
    d = decide(c, RULES)
    assert d.promote, d.reasons
    assert (
        "recent accuracy 0.900 vs champion 0.500 (+0.400, tolerance -0.005): ok "
        "(newest 40 eval rows)" in d.reasons
    )
    # overall 0.945 vs 0.880 passes; the check uses forget_tolerance
    acc = next(x for x in d.checks if x["name"] == "accuracy")
    assert acc["limit"] == pytest.approx(0.88 - 0.02)
    # without a recent set the same card is judged on all rows with `tolerance`
    assert [x["name"] for x in decide(c, dataclasses.replace(RULES, min_recent_rows=41)).checks][
        1:4
    ] == ["accuracy", "macro_f1", "paired all"]


def test_recent_regression_refuses_even_when_older_rows_improve() -> None:
    recent = [False] * 160 + [True] * 40
    champ = [True] * 140 + [False] * 20 + [True] * 38 + [False] * 2  # recent 0.95
    chall = [True] * 160 + [True] * 34 + [False] * 6  # recent 0.85, old much better
    c = paired_card(chall, champ, recent)
    d = decide(c, RULES)
    assert not d.promote
    failed = [x["name"] for x in d.checks if not x["passed"]]
    assert failed == ["recent accuracy", "paired recent"]


def test_min_gain_z_asks_for_a_lead_beyond_chance() -> None:
    # challenger wins 6 rows, loses 3: z = 3 / 3 = 1.0
    champ = [True] * 100 + [False] * 6 + [True] * 3
    chall = [True] * 100 + [True] * 6 + [False] * 3
    c = paired_card(chall, champ, None)
    assert decide(c, dataclasses.replace(RULES, min_gain_z=1.0)).promote
    d = decide(c, dataclasses.replace(RULES, min_gain_z=1.5))
    assert not d.promote
    assert (
        "paired on all rows: challenger alone right on 6, champion alone on 3 (z +1.00, "
        "minimum +1.50): not better" in d.reasons
    )
