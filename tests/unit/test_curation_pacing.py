"""Pacing the label budget: the pure rule, and the curate stage reading a real data home."""

from __future__ import annotations

import pytest

from curation.pacing import Pace, paced_budget
from curation.rules import CurationRules

QUIET = {"drift": False, "estimate_low": 0.91, "threshold": 0.85, "episode_open": False}


def test_a_quiet_batch_asks_only_for_the_audit_share():
    pace = paced_budget(20, 4, **QUIET)
    assert pace == Pace(
        4,
        True,
        "quiet: no drift, estimated accuracy >= 0.910 (bar 0.85), no open episode: "
        "audit share only",
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"drift": True}, "full budget: the drift check flagged drift"),
        ({"drift": None}, "full budget: no drift check about the serving champion"),
        ({"episode_open": True}, "full budget: a recovery episode is open"),
        ({"estimate_low": None}, "full budget: no label-free estimate"),
        ({"estimate_low": 0.84}, "full budget: estimated accuracy 0.840 below the bar 0.85"),
    ],
)
def test_any_doubt_spends_the_full_budget(change, why):
    assert paced_budget(20, 4, **{**QUIET, **change}) == Pace(20, False, why)


def test_the_bar_itself_is_quiet_and_a_bad_floor_is_refused():
    assert paced_budget(20, 4, **{**QUIET, "estimate_low": 0.85}).budget == 4
    with pytest.raises(ValueError, match=r"floor = 21 must lie between 0 and the budget \(20\)"):
        paced_budget(20, 21, **QUIET)


def test_pace_is_a_bool():
    with pytest.raises(ValueError, match=r"\[curation\] pace = 'yes': use true or false"):
        CurationRules(pace="yes")


def test_curate_paces_on_the_homes_verdict(tmp_path, monkeypatch):
    """A quiet verdict about the serving champion: 4 picks, all audit; the same home with
    drift flagged: the full 20 (16 by uncertainty); an explicit budget is never paced."""
    from flows.loop.curate import batch_pace, curate, picks_for
    from storage.state import write_state
    from tests.unit.test_loop_curate import FakeLabelStudio, loop_of
    from tests.unit.test_loop_curate import home as home_fixture

    home = home_fixture.__wrapped__(tmp_path)
    loop = loop_of(home, pace=True)
    monkeypatch.setattr(loop.registry, "get", lambda alias: "v0001")
    verdict = {"status": "ok", "dataset_drift": False, "champion": "v0001",
               "estimate": {"accuracy": 0.93, "low": 0.9, "high": 0.95}}  # fmt: skip
    write_state(home, "last_drift", verdict)
    pace = batch_pace(loop)
    assert (pace.budget, pace.audit_only) == (4, True)
    picks = picks_for(loop, pace.budget, 1, pace.audit_only)
    assert picks["reason"].to_pylist() == ["audit"] * 4
    write_state(home, "last_drift", {**verdict, "dataset_drift": True})
    assert batch_pace(loop) == Pace(20, False, "full budget: the drift check flagged drift")
    write_state(home, "last_drift", {**verdict, "champion": "v0002"})  # about another model
    assert batch_pace(loop).reason == "full budget: no drift check about the serving champion"
    write_state(home, "last_drift", verdict)
    write_state(home, "trigger_episode", {"open": True})
    assert batch_pace(loop).reason == "full budget: a recovery episode is open"
    write_state(home, "trigger_episode", {"open": False})
    fake = FakeLabelStudio()
    loop = loop_of(home, labelstudio=lambda: fake, pace=True)
    monkeypatch.setattr(loop.registry, "get", lambda alias: "v0001")
    quiet = curate(loop, seed=3)  # the configured budget (20), paced
    assert (quiet["selected"], quiet["audit"], quiet["uncertainty"]) == (4, 4, 0)
    assert quiet["pace"].startswith("quiet: no drift")
    explicit = curate(loop, budget=10, seed=4)  # a person's budget: not paced
    assert explicit["selected"] == 10 and "pace" not in explicit


def test_pacing_is_shipped_on():
    """The default chosen from the figures (bench/RESULTS.md, "Budget pacing")."""
    from flows.config import load_config

    assert CurationRules().pace is True
    assert load_config().curation.pace is True
    assert load_config(overrides={"curation.pace": False}).curation.pace is False
