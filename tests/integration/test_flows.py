"""Every flow, run for real: Prefect flow runs (test harness), a real Label Studio server,
Parquet on disk, a trained model. One ordered story on one data home."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support import write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def story(tmp_path_factory, labelstudio, prefect_harness):
    """A data home with a seeded first champion and the config that points at the servers."""
    url, token = labelstudio
    root = tmp_path_factory.mktemp("flows")
    cfg = write_config(
        root / "loopwright.toml",
        root / "home",
        labelstudio={"url": url, "project_title": "flows-test"},
        drift={"report_sample_rows": 200},
        retrain={"max_epochs": 40, "finetune_epochs": 5},
        gate={"min_eval_rows": 10, "min_slice_rows": 10},
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", token)
    from flows.loop.open import open_loop

    rt = open_loop(str(cfg))
    sim = rt.task.simulation()
    scenario = sim.load_scenario(sim.find_scenario("scenarios/tiny.toml"))
    world = sim.world(scenario, scenario.seed, seed_rows=300, holdout_rows=200)
    assert rt.write_seed(world.seed_examples) == 300
    yield {"cfg": str(cfg), "rt": rt, "world": world, "root": root, "token": token}
    mp.undo()


def test_bootstrap_retrain_promotes_first_champion(story):
    from flows.retrain import retrain_flow

    out = retrain_flow(force=True, reason="bootstrap", config_path=story["cfg"])
    rt = story["rt"]
    assert out["retrained"] and out["promoted"]
    assert rt.registry.get("champion") == out["challenger"] == "v0001"
    card = json.loads((rt.home.cards / "v0001.json").read_text())
    assert card["gate"]["promote"] is True
    assert card["models"]["challenger"]["accuracy"] > 0.85  # clean digits, held-out seed rows
    assert (rt.home.cards / "v0001.html").read_text().count("v0001") >= 1


def test_score_batch_logs_every_prediction(story):
    from flows.score_batch import score_batch_flow

    rt, world = story["rt"], story["world"]
    incoming = story["root"] / "incoming"
    incoming.mkdir()
    files = []
    for i in range(world.n_batches):
        files.append(incoming / f"batch-{i:04d}.parquet")
        pq.write_table(world.table(i), files[-1])
        out = score_batch_flow(str(files[-1]), config_path=story["cfg"])
        assert out["written"]["champion"] == world.batch_size and out["ignored"] == 0
    story["truth"] = dict(world.truth)
    assert rt.queries.count_predictions() == world.n_batches * world.batch_size == 200
    # scoring the same file again adds no request id twice
    again = score_batch_flow(str(files[0]), config_path=story["cfg"])
    assert again["ignored"] == world.batch_size and again["written"] == {}
    assert rt.queries.count_predictions() == 200


def test_drift_check_writes_verdict_and_reports(story):
    from flows.drift_check import drift_check_flow

    verdict = drift_check_flow(config_path=story["cfg"])
    assert verdict["status"] in {"ok", "drift"}
    # tiny.toml: one clean batch then strong rotation: the reference (the champion's
    # training rows) is clean, the window (last 100 rows) rotated, so the verdict must be drift
    assert verdict["dataset_drift"] is True
    html = story["rt"].home.drift_reports / verdict["report_html"].split("/")[-1]
    assert html.is_file() and html.stat().st_size > 10_000


def test_curate_is_idempotent_in_labelstudio(story):
    from flows.curate import curate_flow

    rt = story["rt"]
    first = curate_flow(budget=30, seed=1, config_path=story["cfg"])
    assert first["selected"] == 30 and first["audit"] == 6 and first["imported"] == 30
    again = curate_flow(budget=0, seed=2, config_path=story["cfg"])
    assert again["imported"] == 0 and again["already_present"] == 30
    adapter = rt.labelstudio()
    project_id = json.loads((rt.home.state / "labelstudio.json").read_text())["project_id"]
    assert len(adapter.existing_request_ids(project_id)) == 30
    assert rt.queries.pending_labels() == 30


def test_sync_labels_once_each(story):
    from curation.labelstudio_annotate import AnnotatingAdapter
    from flows.sync_labels import sync_labels_flow
    from retrain.digits.annotator import SimulatedAnnotator

    rt = story["rt"]
    project_id = json.loads((rt.home.state / "labelstudio.json").read_text())["project_id"]
    annotator = SimulatedAnnotator(story["truth"], rt.task.classes, error_rate=0.0, seed=0)
    labeler = AnnotatingAdapter(rt.cfg.labelstudio.url, story["token"])  # answers, unlike rt's
    assert annotator.label_pending(labeler, project_id) == 30
    first = sync_labels_flow(config_path=story["cfg"])
    assert first["new_labels"] == 30 and first["pending"] == 0
    second = sync_labels_flow(config_path=story["cfg"])
    assert second["new_labels"] == 0
    assert rt.queries.label_counts()["labelstudio"] == 30


def test_retrain_trigger_gate_and_rollback(story):
    from flows.retrain import retrain_flow
    from flows.rollback import rollback_flow
    from flows.status import collect

    rt = story["rt"]
    out = retrain_flow(force=True, reason="test", config_path=story["cfg"])
    assert out["retrained"] and out["challenger"] == "v0002"
    assert rt.registry.get("challenger") == "v0002"
    gate = out["gate"]
    assert isinstance(gate["promote"], bool) and gate["reasons"]
    status = collect(rt)
    assert status["last_gate"]["promote"] == gate["promote"]
    assert status["champion"] == ("v0002" if gate["promote"] else "v0001")
    if not gate["promote"]:  # make a move to roll back
        rt.registry.set_alias("champion", "v0002", reason="test move")
    history_len = len(rt.registry.history())
    event = rollback_flow(reason="test rollback", config_path=story["cfg"])
    assert event == {**event, "from": "v0002", "to": "v0001"}
    assert rt.registry.get("champion") == "v0001"
    assert len(rt.registry.history()) == history_len + 1


def test_score_batch_rejects_a_bad_file(story, tmp_path):
    from flows.score_batch import score_batch_flow

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"request_id": ["a"]}), bad)
    before = story["rt"].queries.count_predictions()
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['input'\]"):
        score_batch_flow(str(bad), config_path=story["cfg"])
    assert story["rt"].queries.count_predictions() == before
