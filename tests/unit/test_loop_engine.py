"""The engine on a fresh data home, without Prefect: a seed, a first champion, then rounds
of the wine task's small simulation, with the labeler in process and a simulated annotator.

What must hold for the demo and the benchmark to compare batch by batch: two fresh homes
given the same scenario, seed and config decide alike (rounds, picks, labels, models), with
or without artifacts; the sub-steps run through `steps` under the flows' task names; every
stage keeps its state writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.loop.engine import Loop
from flows.loop.round import run_round
from storage.state import read_state
from tests.support import wine_loop

BATCHES = 6


def fresh_loop(root: Path, artifacts: bool = True, steps=None) -> tuple[Loop, object]:
    return wine_loop(root, artifacts=artifacts, steps=steps)


def run(root: Path, artifacts: bool = True, steps=None) -> tuple[Loop, list]:
    loop, world = fresh_loop(root, artifacts, steps)
    assert loop.write_seed(world.seed_examples) == 60
    boot = loop.retrain(force=True, reason="bootstrap")
    assert boot["trigger"]["kind"] == "bootstrap" and boot["promoted"]
    rounds = [run_round(loop, world.table(i), i, world.seed) for i in range(BATCHES)]
    return loop, rounds


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("a"))


def test_rounds_of_a_fresh_home(reference_run):
    loop, rounds = reference_run
    assert [r.round.labels_added for r in rounds] == [10] * BATCHES
    assert all(r.answered == 10 and r.curated["selected"] == 10 for r in rounds)
    assert [r.curated["audit"] for r in rounds] == [2] * BATCHES
    assert [r.drift["status"] for r in rounds[:2]] == ["waiting", "waiting"]  # 100 rows needed
    assert rounds[2].drift["status"] in {"ok", "drift"}
    assert loop.queries.label_counts() == {"seed": 60, "labelstudio": 10 * BATCHES}
    assert loop.queries.count_predictions() == 40 * BATCHES
    # every stage's state
    assert read_state(loop.home, "last_curate")["selected"] == 10
    assert read_state(loop.home, "last_sync")["new_labels"] == 10
    assert read_state(loop.home, "last_trigger")["champion"] == loop.registry.get("champion")
    assert read_state(loop.home, "last_drift")["status"] == rounds[-1].drift["status"]
    assert read_state(loop.home, "trigger_episode") is not None
    gate = read_state(loop.home, "last_gate")
    assert gate["card_html"].endswith(".html") and Path(gate["card_html"]).is_file()


def test_two_fresh_homes_decide_alike_with_or_without_artifacts(reference_run, tmp_path):
    loop_a, rounds_a = reference_run
    loop_b, rounds_b = run(tmp_path, artifacts=False)
    assert [r.round for r in rounds_b] == [r.round for r in rounds_a]
    for a, b in zip(rounds_a, rounds_b, strict=True):
        assert a.curated == b.curated and a.synced == b.synced
        assert {k: a.drift.get(k) for k in ("status", "columns", "prediction")} == {
            k: b.drift.get(k) for k in ("status", "columns", "prediction")
        }
        assert a.retrain["trigger"]["numbers"] == b.retrain["trigger"]["numbers"]

    def queued(loop):  # queued_at is the clock of the run: a record, never a decision
        return loop.queries.queued().drop_columns(["queued_at"]).to_pylist()

    assert queued(loop_b) == queued(loop_a)
    assert loop_a.registry.versions() == loop_b.registry.versions()
    for version in loop_a.registry.versions():
        meta_a, meta_b = loop_a.registry.meta(version), loop_b.registry.meta(version)
        assert meta_a["reference_confidence"] == meta_b["reference_confidence"]
        assert meta_a["train"]["loss"] == meta_b["train"]["loss"]  # same fit, bit for bit
    # without artifacts: no card files, no drift report files, no latency timed
    assert not any(loop_b.home.cards.glob("*")) if loop_b.home.cards.exists() else True
    assert read_state(loop_b.home, "last_gate")["card_html"] is None
    reports = loop_b.home.drift_reports
    assert not reports.exists() or not any(reports.iterdir())


def test_sub_steps_run_through_steps_under_the_task_names(tmp_path):
    seen: list[str] = []

    def steps(name, fn, *args, **kw):
        seen.append(name)
        return fn(*args, **kw)

    loop, world = fresh_loop(tmp_path, artifacts=False, steps=steps)
    loop.write_seed(world.seed_examples)
    loop.retrain(force=True, reason="bootstrap")
    assert seen == ["form-dataset", "fit", "report-card", "promote-or-keep"]
    seen.clear()
    run_round(loop, world.table(0), 0, world.seed)
    assert seen == [
        "score", "drift-statistics", "check-labelstudio", "connect-labelstudio",
        "select-samples", "send-to-labelstudio", "connect-labelstudio", "pull-annotations",
    ]  # fmt: skip


def test_label_without_an_annotator_answers_nothing(tmp_path):
    loop, _ = fresh_loop(tmp_path)
    loop.annotator = None
    assert loop.label() == 0


def test_predictor_is_loaded_once_per_version(reference_run, monkeypatch):
    loop, _ = reference_run
    version = loop.registry.get("champion")
    first = loop.predictor(version)
    monkeypatch.setattr(loop.registry, "load", lambda v: pytest.fail("loaded again"))
    assert loop.predictor(version) is first


def test_the_seed_is_written_at_its_logical_time(reference_run):
    loop, _ = reference_run
    seed = loop.queries.labeled_examples()
    ts = {str(t) for t, s in zip(seed["ts"].to_pylist(), seed["source"].to_pylist(), strict=True)
          if s == "seed"}  # fmt: skip
    assert ts == {"2025-12-31 00:00:00+00:00"}


def test_results_are_json(reference_run):
    _, rounds = reference_run
    for r in rounds:
        json.dumps([r.scored, r.drift, r.curated, r.synced, r.retrain], default=str)


def test_each_input_is_decoded_once_per_loop(reference_run):
    """Fit, report card and drift decode through the loop's cache: what the seed and the
    scored batches decoded is never decoded again."""
    loop, _ = reference_run
    decoded = loop.decoded
    batch = loop.queries.recent_predictions(1, columns=["input"]).column("input").to_pylist()
    assert decoded.misses == len(decoded) >= 60 + BATCHES
    assert decoded.hits > decoded.misses  # each row is used by several stages
    before = decoded.misses
    assert (loop.decode_inputs(batch) == loop.task.decode_inputs(batch)).all()
    assert decoded.misses == before
