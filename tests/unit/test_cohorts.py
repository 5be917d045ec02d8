"""Cohorts: `[[cohort]]` predicates checked when the config is read, members found in the
log, a curation quota of the cohort's most uncertain rows, and, through the engine, each
cohort in the drift verdict, the estimate, the report card's slices and the trigger."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import curation.cohorts as cohorts_mod
from curation.cohorts import parse_cohorts
from curation.sampling import quota_count
from flows.config import load_config
from flows.config_checks import ConfigError
from flows.loop.round import run_round
from retrain.trigger_rules import cohort_trigger
from storage.home import DataHome
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.state import read_state
from tests.support import wine_loop

CLASSES = ["x", "y"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_doctests():
    assert doctest.testmod(cohorts_mod).failed == 0


def write(tmp_path, body: str):
    p = tmp_path / "lw.toml"
    p.write_text(body)
    return p


def test_the_config_reads_cohorts_and_names_a_bad_one(tmp_path):
    ok = write(tmp_path, """
[[cohort]]
name = "scanner-c"
where = "attrs['device'] = 'scanner-c'"
quota = 0.25

[[cohort]]
name = "unsure"
where = "confidence < 0.6"
confidence_drop = 0.1
""")  # fmt: skip
    cfg = load_config(ok, env={})
    assert [c.name for c in cfg.cohorts] == ["scanner-c", "unsure"]
    assert (cfg.cohorts[0].quota, cfg.cohorts[1].confidence_drop) == (0.25, 0.1)
    assert load_config(None, env={}).cohorts == ()
    bad = {
        'name = "a"\nwhere = "devize = 1"': r"\[\[cohort\]\] 'a': where = 'devize = 1' does not "
        r'run on the prediction log \(Binder Error: Referenced column "devize" not found',
        'name = "a"\nwhere = "confidence <"': r"'a': where = 'confidence <' does not run.*Parser",
        'name = "a"\nwhere = "1=1; DROP TABLE x"': r"'a': where = .* must be one SQL predicate",
        'name = "a"\nwhere = "TRUE"\nquota = 2': r"'a': quota = 2 must lie between 0 and 1",
        'name = "a"\nwhere = "TRUE"\nqouta = 0.1': r"'a': unknown key\(s\) \['qouta'\]",
        'name = "1a"\nwhere = "TRUE"': r"name = '1a': use a letter",
        'where = "TRUE"': r"'#1': \['name'\] missing",
    }
    for body, message in bad.items():
        with pytest.raises(ConfigError, match=message) as err:
            load_config(write(tmp_path, f"[[cohort]]\n{body}\n"), env={})
        assert "lw.toml" in str(err.value)
    with pytest.raises(ValueError, match="name 'a' is used twice"):
        parse_cohorts([{"name": "a", "where": "TRUE"}, {"name": "a", "where": "FALSE"}])


def test_members_and_the_cohort_top_on_a_hand_made_log(tmp_path):
    home = DataHome(tmp_path / "home")
    conf = [0.95, 0.55, 0.60, 0.90, 0.52, 0.70]  # confidence of r0..r5; margins follow
    table = make_batch(
        request_ids=[f"r{i}" for i in range(6)], features=np.zeros((6, 2)),
        probs=np.array([[c, 1 - c] for c in conf]), classes=CLASSES, model_version="v0001",
        ts=[T0 + timedelta(minutes=i) for i in range(6)],
        attrs=[{"device": "c" if i % 2 else "a"} for i in range(6)], inputs=[b"x"] * 6,
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)
    q = Queries(home)
    ids = [f"r{i}" for i in range(6)]
    assert q.members("attrs['device'] = 'c'", ids) == {"r1", "r3", "r5"}
    assert q.members("confidence < 0.65", ids) == {"r1", "r2", "r4"}
    assert q.members("confidence < 0.65", ["r0", "nope"]) == set()
    top = q.cohort_top(6, "margin", 2, "attrs['device'] = 'c'", "input")
    # device c: r1 (margin .10), r3 (.80), r5 (.40): the two most uncertain are r1, r5
    assert top["request_id"].to_pylist() == ["r1", "r5"]
    assert [round(s, 2) for s in top["score"].to_pylist()] == [0.9, 0.6]


def test_cohort_trigger_rule():
    d = cohort_trigger([("a", 0.80, 10, 0.05)], 0.9, 20)
    assert (d.fire, d.kind) == (False, "none") and "waiting" in d.reasons[0]
    d = cohort_trigger([("a", 0.86, 50, 0.05)], 0.9, 20)
    assert not d.fire and "within the rule" in d.reasons[0]
    d = cohort_trigger([("a", 0.84, 50, 0.05), ("b", 0.5, 50, 0.5)], 0.9, 20)
    assert d.fire and d.kind == "cohort" and d.numbers["a"]["drop"] == pytest.approx(0.06)


COHORTS = """
[[cohort]]
name = "unsure"
where = "confidence < 0.8"
quota = 0.5
confidence_drop = 0.05

[[cohort]]
name = "first-phase"
where = "attrs['phase'] = '0'"
"""


def test_the_engine_reads_cohorts_in_every_stage(tmp_path):
    loop, world = wine_loop(tmp_path, extra=COHORTS, artifacts=False)
    loop.write_seed(world.seed_examples)
    assert loop.retrain(force=True, reason="bootstrap")["promoted"]
    rounds = [run_round(loop, world.table(i), i, world.seed) for i in range(5)]
    # curation: half of the 8 uncertainty picks (budget 10, 2 audit) from the cohort when
    # it has that many eligible rows, and every such pick is a member
    quota = quota_count(0.5, 8)
    got = [r.curated.get("cohort:unsure", 0) for r in rounds]
    assert max(got) == quota and all(g <= quota for g in got)
    queued = loop.queries.queued().to_pylist()
    picked = [q["request_id"] for q in queued if q["reason"] == "cohort:unsure"]
    assert len(picked) == sum(got) > 0
    logged = loop.queries.prediction_frame(picked, columns=["request_id", "confidence"])
    assert max(logged.column("confidence").to_pylist()) < 0.8
    # drift-check: each cohort's numbers, about the champion's window
    verdict = next(r.drift for r in reversed(rounds) if r.drift["status"] in {"ok", "drift"})
    unsure, first = verdict["cohorts"]["unsure"], verdict["cohorts"]["first-phase"]
    assert 0 < unsure["rows"] <= verdict["current"]["rows"]
    assert unsure["confidence"] < 0.8
    assert unsure["share"] == pytest.approx(unsure["rows"] / 100, abs=1e-4)  # window 100
    assert set(first) >= {"rows", "share", "reference_rows", "drift_share", "estimate"}
    by_slice = verdict["estimate"]["by_slice"]
    if verdict["estimate"]["accuracy"] is not None and unsure["rows"] >= 20:
        assert unsure["estimate"] == by_slice["cohort:unsure=in"]["accuracy"]
    # the trigger judged the cohort rule (the champion's validation confidence is higher
    # than 0.8 + 0.05 on wine, so a cohort of rows below 0.8 fires when it has the rows)
    reasons = [r for rr in rounds for r in rr.retrain["trigger"]["reasons"]]
    judged = [r for r in reasons if r.startswith("cohort unsure:")]
    assert judged, reasons
    fired = [rr.retrain["trigger"] for rr in rounds if "cohort" in rr.retrain["trigger"]["kind"]]
    for trig in fired:  # a firing cohort rule says its numbers
        assert trig["fire"] and trig["numbers"]["cohort"]["unsure"]["drop"] > 0.05
    assert read_state(loop.home, "last_drift")["cohorts"].keys() == {"unsure", "first-phase"}
    # status: the JSON carries them, the table has a line per cohort
    from rich.console import Console

    from flows.cli_ops import status_table
    from flows.status import collect

    info = collect(loop)
    assert info["last_drift"]["cohorts"].keys() == {"unsure", "first-phase"}
    console = Console(record=True, width=200)
    console.print(status_table(info))
    text = console.export_text()
    assert "cohort unsure" in text and "cohort first-phase" in text


def test_a_cohort_is_a_slice_of_the_report_card(tmp_path):
    from flows.loop.card import report_card
    from storage.datasets import load_dataset

    loop, world = wine_loop(tmp_path, extra=COHORTS, artifacts=False)
    loop.write_seed(world.seed_examples)
    loop.retrain(force=True, reason="bootstrap")
    for i in range(3):
        run_round(loop, world.table(i), i, world.seed)
    fresh = loop.retrain(force=True, reason="test")["challenger"]  # eval rows from the log
    ds = load_dataset(loop.home, loop.registry.meta(fresh)["dataset_version"])
    card = report_card(loop, ds, loop.queries.labeled_examples(), fresh, None)
    slices = card["models"]["challenger"]["slices"]
    assert "cohort:first-phase" in slices and "cohort:unsure" in slices
    test_ids = set(ds.test_ids)
    members = loop.queries.members("attrs['phase'] = '0'", sorted(test_ids))
    assert len(members) > 0
    assert slices["cohort:first-phase"]["in"]["n"] == len(members)
