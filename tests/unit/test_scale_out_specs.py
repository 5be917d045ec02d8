"""The pure parts of scale-out: one deployment list for `serve` and `deploy`, the stage
limits and automations `deploy` adds, the events' payloads, the webhook receiver."""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import pytest

from flows.config import Config, ScheduleConfig
from flows.events import (
    DRIFT_DETECTED,
    LABELS_ANNOTATED,
    annotation_event,
    drift_event,
    home_key,
    home_resource_id,
    trigger_spec,
)

ROLLOUT = importlib.util.find_spec("flows.rollout") is not None
SCHEDULE = ScheduleConfig(
    drift_check_cron="1 * * * *",
    curate_cron="2 * * * *",
    trigger_check_cron="3 * * * *",
    sync_labels_interval_s=77,
    retrain_cron="4 5 * * *",
    compact_cron="6 * * * *",
    rollout_cron="7 * * * *",
)


def _when(d) -> list:
    out = []
    for s in d.schedules:
        sched = s.schedule
        out.append(
            sched.interval.total_seconds() if getattr(sched, "interval", None) else sched.cron
        )
    return out


def test_specs_take_names_and_schedules_from_the_schedule_section():
    from flows.serve import deployment_specs

    specs = {s.name: s for s in deployment_specs(SCHEDULE)}
    expected = ["drift-check", "curate", "sync-labels", "retrain", "retrain-periodic", "compact"]
    assert list(specs) == expected + (["rollout"] if ROLLOUT else [])
    assert specs["drift-check"].cron == "1 * * * *"
    assert specs["sync-labels"].interval_s == 77 and specs["sync-labels"].cron is None
    assert specs["retrain"].cron == "3 * * * *" and specs["retrain"].parameters == {}
    assert specs["retrain-periodic"].cron == "4 5 * * *"
    assert specs["retrain-periodic"].parameters == {"force": True, "reason": "periodic schedule"}
    assert specs["retrain"].flow == specs["retrain-periodic"].flow == "flows.retrain:retrain_flow"
    if ROLLOUT:
        assert specs["rollout"].cron == "7 * * * *"
        assert specs["rollout"].flow == "flows.rollout:rollout_flow"
    fewer = ScheduleConfig(compact_cron="", rollout_cron="")
    assert [s.name for s in deployment_specs(fewer)] == expected[:-1]


def test_serve_and_deploy_build_the_same_deployments(tmp_path):
    """One list: a work pool gets exactly what `serve` serves, plus limits and automations."""
    from flows.deploy import STAGE_LIMIT, pool_deployments
    from flows.serve import deployments

    cfg = Config(schedule=SCHEDULE)
    home = str(tmp_path / "home")
    served = deployments(cfg, None, home)
    pooled = pool_deployments(cfg, None, home)

    def view(d):
        return d.name, d.flow_name, d.entrypoint, d.parameters, _when(d), d.description

    assert [view(d) for d in pooled] == [view(d) for d in served]
    assert all(d.entrypoint.startswith("flows.") and ".py" not in d.entrypoint for d in pooled)
    assert {d.parameters["home"] for d in pooled} == {home}
    for d in served:  # serve keeps its behaviour: no limits, no automations
        assert d.concurrency_limit is None and d.triggers == []
    for d in pooled:
        assert d.concurrency_limit == STAGE_LIMIT == 1
        assert d.concurrency_options.collision_strategy == "ENQUEUE"
        assert f"loopwright:{d.name}" in d.tags
    triggers = {d.name: [t.expect for t in d.triggers] for d in pooled if d.triggers}
    assert triggers == {"sync-labels": [{LABELS_ANNOTATED}], "retrain": [{DRIFT_DETECTED}]}
    (retrain,) = [d for d in pooled if d.name == "retrain"]
    assert retrain.triggers[0].match.model_dump() == {
        "prefect.resource.id": f"loopwright.home.{home}"
    }


def test_a_trigger_becomes_an_automation_that_runs_its_deployment():
    from uuid import uuid4

    from prefect.events import DeploymentEventTrigger

    spec = trigger_spec("retrain", "/data/loop")
    assert spec["name"] == "loopwright: loopwright.drift.detected -> retrain"
    trigger = DeploymentEventTrigger(**spec)
    deployment_id = uuid4()
    trigger.set_deployment_id(deployment_id)
    automation = trigger.as_automation()
    (action,) = automation.actions
    assert action.type == "run-deployment" and action.deployment_id == deployment_id
    assert action.parameters is None  # the deployment's own config_path and home
    assert automation.trigger.expect == {DRIFT_DETECTED}
    assert automation.trigger.threshold == 1 and automation.trigger.within == timedelta(0)
    assert trigger_spec("curate", "/data/loop") is None


def test_pool_name_errors_name_the_option():
    from flows.deploy import check_pool_name

    assert check_pool_name(" lw ") == "lw"
    for bad in ("", "a/b"):
        with pytest.raises(ValueError, match="--pool"):
            check_pool_name(bad)


def test_drift_event_carries_the_verdict_numbers_only_on_drift():
    verdict = {
        "status": "drift",
        "dataset_drift": True,
        "drift_share": 0.625,
        "n_drifted": 40,
        "n_columns": 66,
        "confidence_ref": 0.91,
        "confidence_cur": 0.72,
        "confidence_drop": 0.19,
        "n_reference": 500,
        "n_current": 200,
        "rule": "distance",
        "champion": "v0003",
        "columns": [{"column": "f0"}] * 66,  # too big for an event: left out
        "drifted_columns": [f"f{i}" for i in range(40)],
        "ts": "2026-12-01T10:00:00+00:00",
    }
    event = drift_event(verdict, "/data/loop")
    assert event.event == "loopwright.drift.detected"
    assert event.resource == {
        "prefect.resource.id": "loopwright.home./data/loop",
        "prefect.resource.name": "/data/loop",
    }
    assert event.payload["drift_share"] == 0.625 and event.payload["n_drifted"] == 40
    assert event.payload["champion"] == "v0003"
    assert event.payload["drifted_columns"] == [f"f{i}" for i in range(20)]
    assert "columns" not in event.payload
    assert drift_event({**verdict, "status": "ok"}, "/data/loop") is None
    assert drift_event({"status": "waiting", "reason": "no champion"}, "/data/loop") is None


def test_annotation_event_from_labelstudio_payloads():
    one = annotation_event(
        {"action": "ANNOTATION_UPDATED", "project": {"id": 3}, "task": {"id": 9},
         "annotation": {"id": 12}},
        "/h",
    )  # fmt: skip
    assert (one.event, one.payload) == (
        "loopwright.labels.annotated",
        {"action": "ANNOTATION_UPDATED", "project": 3, "task": 9, "annotations": [12]},
    )
    bulk = annotation_event(
        {"action": "ANNOTATIONS_CREATED", "annotation": [{"id": 1}, {"id": 2}]}, "/h"
    )
    assert bulk.payload["annotations"] == [1, 2] and bulk.payload["project"] is None
    assert annotation_event({"action": "TASKS_CREATED"}, "/h") is None
    with pytest.raises(ValueError, match='"action"'):
        annotation_event({"project": {"id": 3}}, "/h")


def test_home_key_pins_absolute_paths_and_keeps_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert home_key("home") == str(tmp_path / "home")
    assert home_key("s3://bucket/loop") == "s3://bucket/loop"
    with pytest.raises(ValueError, match="home"):
        home_resource_id("")


def test_webhook_receiver_checks_the_token_and_emits_one_event_per_annotation():
    from fastapi.testclient import TestClient

    from flows.webhook import PATH, make_app

    sent = []
    app = make_app("/data/loop", token="s3cret", sender=lambda e: sent.append(e) or "id-1")
    client = TestClient(app)
    body = {"action": "ANNOTATION_CREATED", "project": {"id": 3}, "annotation": {"id": 5}}
    assert client.post(PATH, json=body).status_code == 401
    assert client.post(PATH, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.post(PATH, json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.json() == {"emitted": LABELS_ANNOTATED, "id": "id-1", "action": "ANNOTATION_CREATED"}
    auth = {"Authorization": "Bearer s3cret"}
    assert (
        client.post(PATH, json={"action": "PROJECT_UPDATED"}, headers=auth).json()["emitted"]
        is None
    )
    bad = client.post(PATH, content=b"not json", headers=auth)
    assert bad.status_code == 422 and "JSON" in bad.json()["detail"]
    assert client.post(PATH, json={"no": "action"}, headers=auth).status_code == 422
    assert [e.payload["annotations"] for e in sent] == [[5]]
    assert sent[0].resource["prefect.resource.id"] == "loopwright.home./data/loop"
    health = client.get("/healthz").json()
    assert (health["received"], health["emitted"], health["ignored"]) == (3, 1, 1)
    assert "s3cret" not in str(health)
