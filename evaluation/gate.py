"""The promotion gate: a pure decision on a report card, with the numbers behind it.

Why pure: the same card and rules always give the same verdict, so a decision can be
replayed and audited; the caller (a flow) moves the registry alias, the gate never does.
The challenger is promoted only if every check passes; every check is reported, passed
or not, so a refusal lists all that is wrong at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: float slack, so a challenger exactly at the limit is not refused by rounding
_EPS = 1e-9


@dataclass(frozen=True)
class GateRules:
    """The `[gate]` section: limits of the gate (see loopwright.toml for each key).

    Why the section is this dataclass: the flow, the engine and the benchmark hand the same
    object to `decide`, so the gate has one set of defaults and one set of range checks.
    """

    tolerance: float = 0.005  # challenger may trail the champion on today's traffic by this
    slice_tolerance: float = 0.05  # ...and on any one slice by at most this
    min_slice_rows: int = 20  # slices smaller than this (in either model) are not compared
    min_eval_rows: int = 50  # below this the eval set is too small to decide anything
    require_expectations: bool = True  # every expectation test of the challenger must pass
    # When the card has a "recent" eval set (the newest `recent_rows` labeled rows) of >=
    # min_recent_rows, `tolerance` applies there, and the whole eval set (mostly older
    # traffic) may lose at most `forget_tolerance`: the model serves today's traffic, but
    # must not forget the past.
    forget_tolerance: float = 0.02
    min_recent_rows: int = 20
    # Paired check on the deciding rows: (won - lost) / sqrt(won + lost) >= min_gain_z, where
    # won/lost = rows only the challenger / only the champion gets right. 0 = win at least as
    # many rows as it loses; 1.0 ~ a one-sided 84% confidence that it is really better.
    min_gain_z: float = 0.0
    recent_rows: int = 0  # newest eval rows that stand for today's traffic (0 = off)
    enabled: bool = True  # False: every challenger is promoted (baselines of the benchmark)

    def __post_init__(self) -> None:
        for name in ("require_expectations", "enabled"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"[gate] {name} = {getattr(self, name)!r}: use true or false")
        for name in ("tolerance", "slice_tolerance", "forget_tolerance", "min_gain_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"[gate] {name} = {value!r}: use a number")
        if not 0 <= self.min_gain_z <= 5:
            raise ValueError(
                f"[gate] min_gain_z = {self.min_gain_z!r}: use a z score in [0, 5], e.g. 1.0"
            )
        for name in ("tolerance", "slice_tolerance", "forget_tolerance"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"[gate] {name} = {value!r}: use a share in [0, 1), e.g. 0.005")
        for name, least in (
            ("min_slice_rows", 1),
            ("min_eval_rows", 1),
            ("min_recent_rows", 1),
            ("recent_rows", 0),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (int(value) != value or value < least)
            ):
                raise ValueError(
                    f"[gate] {name} = {value!r}: use a whole number of rows >= {least}"
                )


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


def _check(name: str, passed: bool, value: Any, limit: Any, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "value": value, "limit": limit, "detail": detail}


def _need(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] is None:
        raise ValueError(
            f"card has no {where}.{key}: build the card with evaluation.report_card.build_card"
        )
    return section[key]


def _compare(metric: str, chall: float, champ: float, tolerance: float) -> dict[str, Any]:
    """Challenger must reach champion - tolerance on `metric`."""
    limit = champ - tolerance
    passed = chall >= limit - _EPS
    detail = (
        f"{metric} {chall:.3f} vs champion {champ:.3f} ({chall - champ:+.3f}, "
        f"tolerance {-tolerance:+.3f}): {'ok' if passed else 'regressed'}"
    )
    return _check(metric, passed, chall, limit, detail)


def _recent_view(
    card: dict[str, Any], chall: dict[str, Any], champ: dict[str, Any], rules: GateRules
) -> tuple[float, float, int] | None:
    """(challenger, champion accuracy, rows) on the recent eval rows, if there are enough."""
    a, b = chall.get("recent"), champ.get("recent")
    if not a or not b or min(int(a["n"]), int(b["n"])) < rules.min_recent_rows:
        return None
    return float(a["accuracy"]), float(b["accuracy"]), int(a["n"])


def _paired_check(pair: dict[str, Any], min_z: float, where: str) -> dict[str, Any]:
    won, lost = int(pair["challenger_only"]), int(pair["champion_only"])
    z = (won - lost) / (won + lost) ** 0.5 if won + lost else 0.0
    passed = z >= min_z - _EPS
    detail = (
        f"paired on {where} rows: challenger alone right on {won}, champion alone on {lost} "
        f"(z {z:+.2f}, minimum {min_z:+.2f}): {'ok' if passed else 'not better'}"
    )
    return _check(f"paired {where}", passed, z, min_z, detail)


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


def _slice_checks(
    chall: dict[str, Any], champ: dict[str, Any], rules: GateRules
) -> tuple[list[dict[str, Any]], int]:
    """One check per slice with enough rows in both models; also the number skipped."""
    checks: list[dict[str, Any]] = []
    skipped = 0
    for key, values in sorted((chall.get("slices") or {}).items()):
        for value, s in sorted(values.items()):
            other = (champ.get("slices") or {}).get(key, {}).get(value)
            if other is None or min(s["n"], other["n"]) < rules.min_slice_rows:
                skipped += 1
                continue
            a, b = float(s["accuracy"]), float(other["accuracy"])
            name = f"slice {key}={value}"
            passed = a >= b - rules.slice_tolerance - _EPS
            detail = (
                f"{name} accuracy {a:.3f} vs champion {b:.3f} ({a - b:+.3f}, "
                f"tolerance {-rules.slice_tolerance:+.3f}, {min(s['n'], other['n'])} rows): "
                f"{'ok' if passed else 'regressed'}"
            )
            checks.append(_check(name, passed, a - b, -rules.slice_tolerance, detail))
    return checks, skipped


def decide(card: dict[str, Any], rules: GateRules) -> GateDecision:
    """Promote the challenger only if every rule holds; say why either way.

    Rules: (a) the eval set has at least `min_eval_rows` rows; (b) challenger accuracy and
    macro-F1 reach the champion's minus `tolerance` (with a recent eval set of at least
    `min_recent_rows`: recent accuracy within `tolerance`, the whole set within
    `forget_tolerance`); (b') the paired count on those rows reaches `min_gain_z`; (c) no slice with `min_slice_rows` rows
    in both models loses more than `slice_tolerance` accuracy; (d) every expectation test of
    the challenger passes, or fails no worse than a champion that fails it too (when
    `require_expectations`). With no champion, (a) and (d) only.
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
        recent = _recent_view(card, chall, champ, rules)
        overall_tol = rules.tolerance if recent is None else rules.forget_tolerance
        if recent is not None:
            c = _compare("recent accuracy", recent[0], recent[1], rules.tolerance)
            c["detail"] += f" (newest {recent[2]} eval rows)"
            checks.append(c)
            reasons.append(c["detail"])
        for metric in ("accuracy", "macro_f1"):
            c = _compare(
                metric,
                float(_need(chall, metric, "models.challenger")),
                float(_need(champ, metric, "models.champion")),
                overall_tol,
            )
            checks.append(c)
            reasons.append(c["detail"])
        pair = (card.get("paired") or {}).get("all" if recent is None else "recent")
        if pair is not None:
            c = _paired_check(pair, rules.min_gain_z, "all" if recent is None else "recent")
            checks.append(c)
            reasons.append(c["detail"])
        slice_checks, skipped = _slice_checks(chall, champ, rules)
        checks += slice_checks
        bad = [c for c in slice_checks if not c["passed"]]
        reasons += [c["detail"] for c in bad]
        if not bad:
            small = f", {skipped} skipped (< {rules.min_slice_rows} rows)" if skipped else ""
            if slice_checks:
                worst = min(slice_checks, key=lambda c: c["value"])
                reasons.append(
                    f"slices: {len(slice_checks)} compared{small}, worst {worst['name'].removeprefix('slice ')} "
                    f"({worst['value']:+.3f}, tolerance {-rules.slice_tolerance:+.3f}): ok"
                )
            else:
                reasons.append(f"slices: none compared{small}")
    else:
        reasons.append(
            "no champion yet: accuracy, macro-F1 and slice comparisons skipped "
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
