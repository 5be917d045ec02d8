"""Admin endpoints of the rollout: reads are open, writes need the bearer token from the
environment; a missing or wrong token changes nothing, and the token is never echoed."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from flows.loop import rollout
from flows.serving import rollout_api
from storage.rollout_state import rollout_file
from tests.rollout_support import T0, make_loop

TOKEN = "tok-5f1c0ffee-admin"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    loop = make_loop(tmp_path / "home")
    rollout.start(loop, "v0002", now=T0)
    app = FastAPI()
    app.state.home = loop.home
    app.include_router(rollout_api.router)
    monkeypatch.setenv("LOOPWRIGHT_ADMIN_TOKEN", TOKEN)
    return loop, TestClient(app)


def files(loop) -> tuple[bytes, bytes]:
    return rollout_file(loop.home).read_bytes(), loop.home.registry_file.read_bytes()


def test_get_is_open_and_shows_the_rollout(setup):
    loop, client = setup
    body = client.get("/v1/rollout").json()
    assert (body["state"], body["canary"], body["weight"]) == ("running", "v0002", 0.05)
    assert body["history"][0]["outcome"] == "running"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],  # fmt: skip
)
@pytest.mark.parametrize("action", ["pause", "resume", "abort"])
def test_writes_without_the_right_token_are_401_and_change_nothing(setup, headers, action):
    loop, client = setup
    before = files(loop)
    r = client.post(f"/v1/rollout/{action}", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "LOOPWRIGHT_ADMIN_TOKEN" in r.json()["detail"] and "nothing was changed" in r.text
    assert TOKEN not in r.text
    assert files(loop) == before


def test_writes_are_disabled_without_a_configured_token(setup, monkeypatch):
    loop, client = setup
    monkeypatch.delenv("LOOPWRIGHT_ADMIN_TOKEN")
    before = files(loop)
    r = client.post("/v1/rollout/abort", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 503 and "set LOOPWRIGHT_ADMIN_TOKEN" in r.json()["detail"]
    assert files(loop) == before


def test_the_right_token_pauses_resumes_aborts_and_never_shows(setup, caplog):
    loop, client = setup
    auth = {"Authorization": f"Bearer {TOKEN}"}
    seen = []
    with caplog.at_level(logging.DEBUG):
        r = client.post("/v1/rollout/pause", headers=auth, json={"reason": "checking latency"})
        seen.append(r)
        assert r.status_code == 200 and r.json()["state"] == "paused"
        seen.append(r := client.post("/v1/rollout/pause", headers=auth))
        assert r.status_code == 200  # pausing a paused rollout is harmless
        seen.append(r := client.post("/v1/rollout/resume", headers=auth))
        assert r.json()["state"] == "running"
        seen.append(r := client.post("/v1/rollout/abort", headers=auth))
        assert r.json()["outcome"] == "aborted"
        seen.append(r := client.post("/v1/rollout/abort", headers=auth))
        assert r.status_code == 409 and "no active rollout" in r.json()["detail"]
        seen.append(client.get("/v1/rollout"))
    assert loop.registry.get("canary") is None and loop.registry.get("champion") == "v0001"
    for response in seen:
        assert TOKEN not in response.text and TOKEN not in json.dumps(dict(response.headers))
    assert TOKEN not in caplog.text
    stored = rollout_file(loop.home).read_text() + loop.home.registry_file.read_text()
    assert TOKEN not in stored
    actors = {e["actor"] for e in loop.registry.history() if e["alias"] == "canary"}
    assert "admin-api" in actors


def test_token_is_not_in_status_json(setup):
    from flows.status import collect

    loop, client = setup
    client.post("/v1/rollout/pause", headers={"Authorization": f"Bearer {TOKEN}"})
    info = collect(loop)
    text = json.dumps(info, default=str)
    assert TOKEN not in text
    assert info["rollout"]["state"] == "paused" and info["serving"]["canary"] == "v0002"
    assert info["serving"]["weight"] == 0.05


def test_token_is_not_in_the_serving_apps_metrics(setup):
    """Through the serving app itself (its /metrics), when it is there to include the router."""
    app_module = pytest.importorskip("flows.serving.app")
    from flows.config import Config

    loop, _ = setup
    client = TestClient(app_module.create_app(Config(), loop.home))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (
        client.post("/v1/rollout/pause", headers={"Authorization": "Bearer x"}).status_code == 401
    )
    assert client.post("/v1/rollout/pause", headers=auth).status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and TOKEN not in metrics.text
    assert TOKEN not in client.get("/v1/rollout").text
