"""The promotion gate: a pure decision on a report card, with the numbers behind it.

Why pure: the same card and rules always give the same verdict, so a decision can be
replayed and audited; the caller (a flow) moves the registry alias, the gate never does.
The challenger is promoted only if every check passes; every check is reported, passed
or not, so a refusal lists all that is wrong at once. Comparisons with the champion are
exact paired tests (evaluation/paired.py) on the card's per-row counts, not point
differences: with a few hundred eval rows a lead of half a point is one or two rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evaluation.gate_rules import GateRules
from evaluation.paired import mcnemar_better, worse_than_margin

__all__ = ["GateDecision", "GateRefused", "GateRules", "decide"]

#: float slack, so a challenger exactly at the limit is not refused by rounding
_EPS = 1e-9


@dataclass(frozen=True)
class GateDecision:
    """The verdict: `promote`, human `reasons` with the numbers, and one dict per check."""

    promote: bool
    reasons: tuple[str, ...]
    checks: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["checks"] = [dict(c) for c in self.checks]
        return d


class GateRefused(Exception):
    """Raised by callers that prefer an exception to a `promote=False` decision."""

    def __init__(self, decision: GateDecision) -> None:
        self.decision = decision
        failed = [c["detail"] for c in decision.checks if not c["passed"]]
        super().__init__("gate refused promotion: " + "; ".join(failed or list(decision.reasons)))


def _check(
    name: str,
    passed: bool,
    value: Any,
    limit: Any,
    detail: str,
    test: str | None = None,
    p_value: float | None = None,
    **numbers: Any,
) -> dict[str, Any]:
    out = {"name": name, "passed": bool(passed), "value": value, "limit": limit, "detail": detail}
    if test is not None:
        out["test"] = test
        out["p_value"] = p_value
    return {**out, **numbers}


def _need(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] is None:
        raise ValueError(
            f"card has no {where}.{key}: build the card with evaluation.report_card.build_card"
        )
    return section[key]


#: the tests the checks name (exact: see evaluation/paired.py)
BETTER_TEST = "exact one-sided McNemar (binomial 1/2 on discordant rows)"
WORSE_TEST = "exact one-sided McNemar shifted by the margin (binomial on discordant rows)"


def _pair(pair: dict[str, Any]) -> tuple[int, int, int]:
    return int(pair["n"]), int(pair["challenger_only"]), int(pair["champion_only"])


def _better(pair: dict[str, Any], where: str, alpha: float) -> dict[str, Any]:
    """The challenger must be better with evidence: exact McNemar p < alpha. A tie (or a
    lead within chance) keeps the champion."""
    n, b, c = _pair(pair)
    p = mcnemar_better(b, c)
    passed = p < alpha
    if passed:
        verdict = "better, ok"
    elif b == c:
        verdict = "a tie: keep the champion"
    else:
        verdict = "not significantly better: keep the champion"
    detail = (
        f"better on {where} ({n} rows): challenger alone right on {b}, champion alone on {c}, "
        f"accuracy {(b - c) / n if n else 0.0:+.3f}; exact one-sided McNemar p = {p:.4f} "
        f"(alpha {alpha}): {verdict}"
    )
    return _check(f"better on {where}", passed, p, alpha, detail, BETTER_TEST, p, n=n,
                  challenger_only=b, champion_only=c)  # fmt: skip


def _not_worse(pair: dict[str, Any], name: str, margin: float, alpha: float) -> dict[str, Any]:
    """Refuse only on evidence of harm: the accuracy drop exceeds `margin` with p < alpha
    (`evaluation.paired.worse_than_margin`); no rows, no evidence: ok."""
    n, b, c = _pair(pair)
    p = worse_than_margin(b, c, n, margin) if n else 1.0
    passed = p >= alpha
    diff = (b - c) / n if n else 0.0
    detail = (
        f"{name} ({n} rows): challenger alone right on {b}, champion alone on {c}, accuracy "
        f"{diff:+.3f} (margin {-margin:+.3f}); worse beyond the margin: p = {p:.4f} "
        f"(alpha {alpha}): " + ("ok" if passed else "significantly worse, refused")
    )
    return _check(name, passed, p, alpha, detail, WORSE_TEST, p, n=n, challenger_only=b,
                  champion_only=c, delta=diff, margin=margin)  # fmt: skip


def _expectation(
    mine: dict[str, Any], theirs: dict[str, Any] | None, tolerance: float
) -> tuple[bool, str]:
    """Does the challenger's result on one expectation allow promotion? (ok, detail)

    Why relative once a champion exists: an expectation measured on today's eval rows can
    become unreachable for every model after the world moves (thick strokes make any digit
    model less stable under a 5° turn). Requiring it absolutely would then freeze the stale
    champion forever. So: a challenger may never break an expectation the champion meets,
    and on one the champion fails too it may be at most `tolerance` worse than the champion.
    """
    name, detail = mine["name"], mine.get("detail", "")
    if mine.get("passed"):
        return True, f"expectation {name} ok: {detail}"
    if theirs is None or theirs.get("passed") or theirs.get("value") is None:
        why = "the champion meets it" if theirs is not None else "the champion has no result"
        return False, f"expectation {name} failed ({why}): {detail}"
    a, b = float(mine.get("value") or 0.0), float(theirs["value"])
    ok = a >= b - tolerance - _EPS
    return ok, (
        f"expectation {name} failed by both models: {a:.3f} vs champion {b:.3f} "
        f"({a - b:+.3f}, tolerance {-tolerance:+.3f}): "
        + ("not worse, ok" if ok else "worse than the champion")
        + f"; {detail}"
    )


def _slice_checks(paired: dict[str, Any], rules: GateRules) -> tuple[list[dict[str, Any]], int]:
    """A not-worse test per slice with at least `min_slice_rows` eval rows; also the number
    skipped (smaller slices: too few rows to show anything)."""
    checks: list[dict[str, Any]] = []
    skipped = 0
    for key, values in sorted((paired.get("slices") or {}).items()):
        for value, pair in sorted(values.items()):
            if int(pair["n"]) < rules.min_slice_rows:
                skipped += 1
                continue
            checks.append(
                _not_worse(pair, f"slice {key}={value}", rules.slice_tolerance, rules.alpha)
            )
    return checks, skipped


def _views(paired: dict[str, Any], rules: GateRules) -> tuple[str, dict, dict | None]:
    """(name, counts) of the view the challenger must win, and the regression view (None:
    the whole eval set is the recent view: recent_rows 0, too few recent rows, none older)."""
    recent, regression = paired.get("recent"), paired.get("regression")
    if recent is None or int(recent["n"]) < rules.min_recent_rows:
        return "all eval rows", paired["all"], None
    if regression is None or int(regression["n"]) == 0:
        return "all eval rows", paired["all"], None
    return f"recent (newest {int(recent['n'])} eval rows)", recent, regression


def _suite_checks(card: dict[str, Any]) -> list[dict[str, Any]]:
    """One check per required edge-case suite of the card (evaluation/suites.py judges it)."""
    out = []
    for s in card.get("suites") or []:
        if not s.get("required"):
            continue
        ok = bool(s.get("passed"))
        why = f": {s['detail']}" if s.get("detail") else ""
        detail = f"suite {s.get('name')} (required): " + ("ok" if ok else "failed") + why
        out.append(_check(f"suite {s.get('name')}", ok, s.get("challenger"), None, detail))
    return out


def decide(card: dict[str, Any], rules: GateRules) -> GateDecision:
    """Promote the challenger only with evidence that it is better and none that it harms;
    say why either way.

    Rules: (a) the eval set has at least `min_eval_rows` rows; with a champion, on the
    card's paired counts: (b) better on the recent view (the newest `recent_rows` eval rows;
    the whole eval set when there are fewer than `min_recent_rows` or nothing older): exact
    one-sided McNemar p < `alpha`; a tie keeps the champion; (c) not significantly worse on
    the regression view (the older eval rows): refused when the drop exceeds
    `forget_tolerance` with p < `alpha` (McNemar shifted by the margin); (d) the same on
    every slice with at least `min_slice_rows` rows, margin `slice_tolerance`; (e) every
    expectation test of the challenger passes, or fails no worse than a champion that fails
    it too (when `require_expectations`); (f) every required suite of the card passes.
    With no champion, (a), (e) and (f) only.
    A `"gate"` key already in the card is ignored: the decision depends on the numbers only.
    With `enabled` False the challenger is promoted whatever the checks say (they are still
    computed and reported, so a card shows what the gate would have done).
    """
    models = card.get("models") or {}
    chall = models.get("challenger")
    if not chall:
        raise ValueError(
            "card has no models.challenger: build it with evaluation.report_card.build_card"
        )
    champ = models.get("champion")
    checks: list[dict[str, Any]] = []
    reasons: list[str] = []

    n = int(_need(chall, "n", "models.challenger"))
    if champ:
        n = min(n, int(_need(champ, "n", "models.champion")))
    ok = n >= rules.min_eval_rows
    detail = f"eval set {n} rows (minimum {rules.min_eval_rows}): " + (
        "ok" if ok else "too few to decide, label more audit samples"
    )
    checks.append(_check("eval_rows", ok, n, rules.min_eval_rows, detail))
    reasons.append(detail)

    if champ:
        paired = card.get("paired")
        if not paired or "all" not in paired:
            raise ValueError(
                "card has no paired counts: build it with evaluation.report_card.build_card "
                "from ModelEval results with per-row hits (evaluate_model gives them)"
            )
        where, view, regression = _views(paired, rules)
        c = _better(view, where, rules.alpha)
        checks.append(c)
        reasons.append(c["detail"])
        if regression is not None:
            c = _not_worse(regression, "regression view (older eval rows)",
                           rules.forget_tolerance, rules.alpha)  # fmt: skip
            checks.append(c)
            reasons.append(c["detail"])
        else:
            reasons.append("regression view: none (the whole eval set is the recent view)")
        slice_checks, skipped = _slice_checks(paired, rules)
        checks += slice_checks
        bad = [c for c in slice_checks if not c["passed"]]
        reasons += [c["detail"] for c in bad]
        if not bad:
            small = f", {skipped} skipped (< {rules.min_slice_rows} rows)" if skipped else ""
            if slice_checks:
                low = min(slice_checks, key=lambda c: c["p_value"])
                reasons.append(
                    f"slices: {len(slice_checks)} tested{small}, none significantly worse "
                    f"(lowest p {low['p_value']:.4f} on {low['name'].removeprefix('slice ')}, "
                    f"margin {-rules.slice_tolerance:+.3f}): ok"
                )
            else:
                reasons.append(f"slices: none tested{small}")
    else:
        reasons.append(
            "no champion yet: paired and slice comparisons skipped "
            "(first model needs enough eval rows and passing expectations)"
        )

    results = chall.get("expectations") or []
    theirs = {e["name"]: e for e in ((champ or {}).get("expectations") or [])}
    failed = [e for e in results if not e.get("passed")]
    if rules.require_expectations:
        blocking = []
        for e in results:
            ok, detail = _expectation(e, theirs.get(e["name"]), rules.slice_tolerance)
            checks.append(
                _check(f"expectation {e['name']}", ok, e.get("value"), e.get("threshold"), detail)
            )
            if not ok:
                blocking.append(detail)
            elif not e.get("passed"):
                reasons.append(detail)
        reasons += blocking
        if not failed:
            reasons.append(f"expectations: {len(results)}/{len(results)} passed: ok")
    elif failed:
        reasons.append(
            f"expectations: {len(failed)}/{len(results)} failed, ignored (require_expectations=False)"
        )

    suites = _suite_checks(card)
    checks += suites
    reasons += [c["detail"] for c in suites]

    if not rules.enabled:
        return GateDecision(
            promote=True,
            reasons=(
                "gate disabled by [gate] enabled = false: every challenger is promoted; the "
                "checks below are reported, not applied",
                *reasons,
            ),
            checks=tuple(checks),
        )
    promote = all(c["passed"] for c in checks)
    return GateDecision(promote=promote, reasons=tuple(reasons), checks=tuple(checks))
