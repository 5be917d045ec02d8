"""A loop that settles: the episode's end on evidence, the back-off after refused retrains and
the new-drift-onset rule, on hand-made evidence with exact expected values; then the same
rules reading a real data home's `retrains` events (`flows.loop.triggers`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from curation.drift_rules import DriftRules, traffic_end
from retrain.trigger_episode import (
    absorb_gates,
    backoff_labels,
    drift_onset,
    settle_reason,
    settled_decisions,
)
from retrain.trigger_rules import TriggerEvidence, TriggerRules, assess
from retrain.triggers import Episode


def audit(right: int, wrong: int) -> np.ndarray:
    return np.array([True] * right + [False] * wrong, dtype=bool)


def drift(share: float, drifted: int, columns: int = 18, champion: str = "v1") -> dict:
    return {"status": "drift" if share >= 0.5 else "ok", "dataset_drift": share >= 0.5,
            "drift_share": share, "n_drifted": drifted, "n_columns": columns,
            "confidence_drop": 0.0, "champion": champion}  # fmt: skip


def evidence(right=48, wrong=12, conf=0.80, drift_verdict=None, gates=(), since=None):
    return TriggerEvidence(
        audit_correct=audit(right, wrong),
        reference_confidence=0.95,
        recent_confidence=np.full(400, conf),
        drift=drift_verdict,
        served=0,
        confidence_min_rows=100,
        gates=tuple(gates),
        labels_since_refused=since,
    )


# -- the pieces ---------------------------------------------------------------------------------


def test_absorb_gates_counts_refusals_resets_on_promotion_and_keeps_a_cursor():
    ep = absorb_gates(Episode(open=True), [("v2", False), ("v3", False)])
    assert (ep.refusals, ep.refused, ep.gates_seen, ep.promoted) == (2, "v3", 2, False)
    ep = absorb_gates(ep, [("v2", False), ("v3", False), ("v4", True)])
    assert (ep.refusals, ep.refused, ep.gates_seen, ep.promoted) == (0, None, 3, True)
    ep = absorb_gates(ep, [("v2", False), ("v3", False), ("v4", True), ("v5", False)])
    assert (ep.refusals, ep.refused, ep.gates_seen) == (1, "v5", 4)
    # a promotion outside an episode is not "promoted during the episode"
    assert absorb_gates(Episode(), [("v2", True)]).promoted is False
    # an events file shorter than the cursor (a new home): counted from its start
    assert absorb_gates(Episode(gates_seen=9), [("v2", False)]).refusals == 1


def test_backoff_labels_doubles_up_to_the_cap():
    assert [backoff_labels(r, 20, 2.0, 320) for r in range(7)] == [20, 40, 80, 160, 320, 320, 320]
    assert [backoff_labels(r, 20, 1.5, 100) for r in range(5)] == [20, 30, 45, 68, 100]
    assert backoff_labels(10_000, 20, 2.0, 320) == 320  # no overflow
    with pytest.raises(ValueError, match="refusals"):
        backoff_labels(-1, 20, 2.0, 320)


def test_drift_onset_first_other_champion_or_significantly_beyond():
    assert drift_onset(Episode(), None) is None
    assert drift_onset(Episode(), drift(0.2, 4)) is None  # no dataset drift: no onset
    assert drift_onset(Episode(), drift(0.5, 9)) == "dataset drift (share 0.50) opens an episode"
    ep = Episode(open=True, onset_share=0.5, onset_champion="v1")
    assert drift_onset(ep, drift(0.5, 9)) is None
    # 13/18 = 0.72: Wilson [0.49, 0.88] reaches down to 0.5: not significantly beyond
    assert drift_onset(ep, drift(13 / 18, 13)) is None
    # 17/18 = 0.94: Wilson lower bound 0.74 > 0.5
    assert drift_onset(ep, drift(17 / 18, 17)) == (
        "drift share 0.94 [0.74, 0.99] of 18 columns is beyond 0.50 seen in the episode"
    )
    assert drift_onset(ep, drift(0.5, 9, champion="v2")) == (
        "dataset drift (share 0.50) against champion v2's own reference"
    )
    # a verdict without column counts cannot be judged beyond
    assert drift_onset(ep, {**drift(1.0, 18), "n_columns": None}) is None


def test_settle_reason_refusals_or_accuracy_of_a_promoted_champion():
    refused = Episode(open=True, baseline=0.95, refusals=2, promoted=True)
    assert settle_reason(refused, audit(0, 0), 0.85, 20, 2) == (
        "the last 2 challengers, trained on more labels, were refused by the gate"
    )
    # refusals before any promotion in the episode only back off
    assert settle_reason(replace(refused, promoted=False), audit(0, 0), 0.85, 20, 2) is None
    assert settle_reason(refused, audit(0, 0), 0.85, 20, 3) is None  # 2 < 3
    assert settle_reason(refused, audit(0, 0), 0.85, 20, 0) is None  # rule off
    assert settle_reason(Episode(refusals=5), audit(0, 0), 0.85, 20, 2) is None  # no episode
    promoted = Episode(open=True, baseline=0.95, promoted=True)
    # 48/60 = 0.800, Wilson upper 0.887 >= 0.85: not significantly below
    assert settle_reason(promoted, audit(48, 12), 0.85, 20, 2) == (
        "audit accuracy 0.800 [0.682, 0.882] on 60 labels is not significantly below 0.850"
    )
    assert settle_reason(promoted, audit(48, 12), 0.85, 20, 2, on_accuracy=False) is None
    assert settle_reason(promoted, audit(40, 20), 0.85, 20, 2) is None  # upper 0.78 < 0.85
    assert settle_reason(promoted, audit(15, 0), 0.85, 20, 2) is None  # 15 < 20 labels
    # the champion that served when the drift began: its labels may predate the drift
    not_promoted = Episode(open=True, baseline=0.95)
    assert settle_reason(not_promoted, audit(60, 0), 0.85, 20, 2) is None


def test_settled_decisions_fire_only_on_a_significant_change():
    s = {"accuracy": 0.8, "confidence": 0.85, "reason": "r"}
    quiet = settled_decisions(s, audit(45, 15), 0.76, 400, 100, 20, 0.1)
    assert [(d.kind, d.fire) for d in quiet] == [("regression", False), ("confidence", False)]
    assert quiet[1].numbers["drop"] == pytest.approx(0.09)
    loud = settled_decisions(s, audit(30, 30), 0.70, 400, 100, 20, 0.1)
    assert [d.fire for d in loud] == [True, True]
    assert loud[0].numbers["ci_high"] == pytest.approx(0.6226, abs=1e-4)
    # too few labels / rows: those checks are not made
    assert settled_decisions(s, audit(5, 5), 0.5, 50, 100, 20, 0.1) == []
    # settled without an accuracy (too few labels then): only confidence is checked
    only = settled_decisions({"accuracy": None, "confidence": 0.85}, audit(0, 60), 0.8, 400,
                             100, 20, 0.1)  # fmt: skip
    assert [d.kind for d in only] == ["confidence"]


def test_traffic_end_is_just_after_the_newest_served_row():
    t = datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert traffic_end([None, t, datetime(2026, 5, 1, 9, tzinfo=UTC)]) == t.replace(microsecond=1)
    assert traffic_end([]) is None


def test_trigger_rules_check_the_new_keys():
    with pytest.raises(ValueError, match=r"backoff_factor = 0.5 must be at least 1"):
        TriggerRules(backoff_factor=0.5)
    with pytest.raises(ValueError, match=r"backoff_max_labels = 10 is below min_labels = 20"):
        TriggerRules(backoff_max_labels=10)
    with pytest.raises(ValueError, match=r"settle_refusals = 1.5: use a whole number"):
        TriggerRules(settle_refusals=1.5)
    with pytest.raises(ValueError, match=r"settle_on_accuracy = 1: use true or false"):
        TriggerRules(settle_on_accuracy=1)
    with pytest.raises(ValueError, match=r"champion_reference = 'seed' is not one of"):
        DriftRules(champion_reference="seed")


# -- assess over a sequence of checks: the measured "never settles" case -------------------------


def test_a_harder_world_settles_after_three_refusals_and_backs_off_between():
    """Drift opens an episode; v2 is promoted; the world stays harder (confidence 0.80 vs 0.95
    before, audit 0.800 < 0.85, not significantly): before, every check fired. Now: refused once -> wait for 40
    labels; twice -> 80; three times -> settled; the same drift verdict stays quiet; a drift
    significantly beyond the largest seen fires again with the back-off reset."""
    rules = TriggerRules(settle_on_accuracy=False)  # the refusals path (the other: below)
    d, ep = assess(rules, evidence(drift_verdict=drift(0.5, 9)), Episode())
    assert (d.fire, d.kind, ep.open, ep.baseline, ep.onset_share) == (
        True,
        "performance+confidence+drift",
        True,
        0.95,
        0.5,
    )
    # v2 promoted; its first drift verdict (against its own reference) is a new onset
    gates = [("v2", True)]
    v2 = drift(0.5, 9, champion="v2")
    d, ep = assess(rules, evidence(drift_verdict=v2, gates=gates), ep)
    assert d.fire and (ep.promoted, ep.onset_champion, ep.refusals) == (True, "v2", 0)
    # v3 refused; 25 labels since that challenger, 40 needed
    gates.append(("v3", False))
    d, ep = assess(rules, evidence(drift_verdict=v2, gates=gates, since=25), ep)
    assert (d.fire, ep.refusals, ep.refused) == (False, 1, "v3")
    assert d.reasons[0] == (
        "backing off: 1 refused retrain(s) in a row, 25 labels since v3 was refused, 40 needed "
        "([trigger] backoff_factor, backoff_max_labels)"
    )
    assert d.numbers["backoff"] == {"refusals": 1, "refused": "v3", "labels": 25, "needed": 40}
    # 40 labels: it fires
    d, ep = assess(rules, evidence(drift_verdict=v2, gates=gates, since=40), ep)
    assert d.fire and d.numbers["backoff"]["needed"] == 40
    # v4 refused: 80 needed; at 80 it fires
    gates.append(("v4", False))
    d, ep = assess(rules, evidence(drift_verdict=v2, gates=gates, since=79), ep)
    assert (d.fire, ep.refusals, d.numbers["backoff"]["needed"]) == (False, 2, 80)
    d, ep = assess(rules, evidence(drift_verdict=v2, gates=gates, since=80), ep)
    assert d.fire
    # v5 refused: the episode settles, at the levels of now
    gates.append(("v5", False))
    d, ep = assess(rules, evidence(drift_verdict=v2, gates=gates, since=5), ep)
    assert (d.fire, d.kind, ep.open, ep.refusals) == (False, "settled", False, 3)
    why = "the last 3 challengers, trained on more labels, were refused by the gate"
    assert d.reasons[0] == f"settled: {why}"
    assert ep.settled == {
        "accuracy": pytest.approx(48 / 60),
        "confidence": pytest.approx(0.80),
        "reason": why,
    }
    # the same world, ten more checks, the share wandering 0.50..0.72 (not beyond): quiet;
    # the largest share seen is remembered
    for k in range(10):
        wander = v2 if k % 2 else drift(13 / 18, 13, champion="v2")
        d, ep = assess(rules, evidence(drift_verdict=wander, gates=gates, since=500), ep)
        assert (d.fire, d.kind) == (False, "settled")
    assert ep.onset_share == pytest.approx(13 / 18)
    # 17/18: Wilson lower bound 0.74 > 0.72: beyond, but not yet for 16/18 (0.67)
    assert drift_onset(ep, drift(16 / 18, 16, champion="v2")) is None
    # a drift significantly beyond 0.5: a new onset, the back-off is reset, it fires
    d, ep = assess(rules, evidence(drift_verdict=drift(1.0, 18, champion="v2"), gates=gates,
                                   since=0), ep)  # fmt: skip
    assert d.fire and "drift" in d.kind
    assert (ep.refusals, ep.refused, ep.settled, ep.open, ep.onset_share) == (
        0,
        None,
        None,
        True,
        1.0,
    )


def test_a_settled_episode_reopens_on_a_significant_regression():
    rules = TriggerRules()
    settled = Episode(settled={"accuracy": 0.8, "confidence": 0.8, "reason": "r"}, refusals=2,
                      refused="v3", gates_seen=2)  # fmt: skip
    gates = [("v2", False), ("v3", False)]
    d, ep = assess(rules, evidence(45, 15, conf=0.78, gates=gates, since=0), settled)
    assert (d.fire, d.kind, ep.settled is not None) == (False, "settled", True)
    assert d.reasons[0] == "settled: r"
    # 30/60 right: upper bound 0.62 < 0.80 it settled at -> a new episode at the champion's level
    d, ep = assess(rules, evidence(30, 30, conf=0.78, gates=gates, since=0), settled)
    assert (d.fire, d.kind) == (True, "regression")
    assert (ep.open, ep.baseline, ep.refusals, ep.settled) == (True, 0.95, 0, None)


def test_a_promoted_champion_good_enough_on_audit_ends_the_episode():
    """Confidence stays 0.10 below the pre-drift 0.95 (recovery would fire forever), but the
    champion promoted during the episode has audit accuracy 52/60 = 0.867 >= 0.85."""
    rules = TriggerRules(on_confidence=False)
    ep = Episode(open=True, baseline=0.95, gates_seen=0)
    d, ep = assess(rules, evidence(52, 8, conf=0.85, gates=[("v2", True)]), ep)
    assert (d.fire, d.kind, ep.open) == (False, "settled", False)
    assert d.reasons[0] == (
        "settled: audit accuracy 0.867 [0.758, 0.931] on 60 labels is not significantly below 0.850"
    )
    # the same with the accuracy rule off: recovery keeps firing
    off = TriggerRules(on_confidence=False, settle_on_accuracy=False)
    d, _ = assess(off, evidence(52, 8, conf=0.85, gates=[("v2", True)]), Episode(True, 0.95))
    assert (d.fire, d.kind) == (True, "recovery")


def test_backoff_yields_while_the_champion_is_failing():
    """30/60 audit right: Wilson upper bound 0.62 < 0.85: every retrain is worth it."""
    ep = Episode(open=True, baseline=0.95, refusals=3, refused="v4", gates_seen=3)
    gates = [("v2", False), ("v3", False), ("v4", False)]
    d, _ = assess(TriggerRules(), evidence(30, 30, gates=gates, since=20), ep)
    assert d.fire and d.numbers["backoff"] == {
        "refusals": 3,
        "refused": "v4",
        "labels": 20,
        "needed": None,
        "skipped": "audit accuracy 0.500 [0.377, 0.623] on 60 labels is significantly below 0.850",
    }
    # 48/60 (upper bound 0.88): not failing, the back-off holds it (160 needed)
    d, _ = assess(TriggerRules(), evidence(48, 12, gates=gates, since=20), ep)
    assert not d.fire and d.numbers["backoff"]["needed"] == 160


def test_backoff_off_fires_at_every_check():
    rules = TriggerRules(backoff=False, settle_refusals=0)
    ep = Episode(open=True, baseline=0.95, refusals=3, refused="v4", gates_seen=3)
    gates = [("v2", False), ("v3", False), ("v4", False)]
    d, ep = assess(rules, evidence(gates=gates, since=1), ep)
    assert d.fire and "backoff" not in d.numbers and ep.refusals == 3


# -- the reading: a real data home's retrains events ---------------------------------------------


def test_evaluate_triggers_reads_refusals_and_labels_since_the_refused_challenger(tmp_path):
    """A real home: the bootstrap champion (seed rows only), 10 new labels, then a refused
    retrain of a challenger trained on the seed rows: the periodic rule (every_rows = 1)
    fires, the back-off holds it (10 labels since the refusal, 2 * 10 needed)."""
    from flows.loop.triggers import evaluate_triggers, gate_verdicts, labels_since_refused
    from storage.state import append_event
    from tests.support import WINE_LOOP_TABLES, wine_loop

    trigger = {**WINE_LOOP_TABLES["trigger"], "every_rows": 1}
    loop, world = wine_loop(tmp_path, {"trigger": trigger})
    loop.write_seed(world.seed_examples)
    champion = loop.retrain(force=True, reason="bootstrap")["champion"]
    loop.score(world.table(0))
    loop.curate(seed=1)
    assert loop.label() == 10 and loop.sync()["new_labels"] == 10
    assert gate_verdicts(loop) == ((champion, True),)
    assert labels_since_refused(loop, gate_verdicts(loop)) is None  # promoted: no back-off
    append_event(loop.home, "retrains", {"gate": {"challenger": champion, "promote": False}})
    gates = gate_verdicts(loop)
    assert gates == ((champion, True), (champion, False))
    assert labels_since_refused(loop, gates) == 10
    decision, episode = evaluate_triggers(loop, champion)
    assert (episode.refusals, episode.refused, episode.gates_seen) == (1, champion, 2)
    assert not decision.fire and decision.kind.endswith("periodic")
    assert decision.numbers["backoff"] == {
        "refusals": 1,
        "refused": champion,
        "labels": 10,
        "needed": 20,
    }
