"""`loopwright serve-model` as a real uvicorn process on 127.0.0.1, over a data home whose
champion was trained (once per session, seconds): ack means logged when answered, a champion
swap is served without a restart, shadow rows, /metrics, feedback into the label log."""

from __future__ import annotations

import time

import httpx
import pyarrow.parquet as pq
import pytest

from storage.home import DataHome
from storage.registry import Registry
from tests.serving_support import (
    digit_inputs,
    digits_home,
    instances,
    logged_ids,
    start_server,
    trained_digits,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    home = digits_home(root / "home")
    srv = start_server(root, home)
    try:
        yield srv
    finally:
        assert srv.stop() in (0, -15), srv.log.read_text()[-2000:]  # uvicorn re-raises SIGTERM


def test_every_answered_prediction_is_logged_when_the_answer_arrives(server):
    xs, labels = digit_inputs(60)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for start in range(0, 60, 20):
            body = {
                "instances": [
                    {"request_id": f"ack-{i}", "input": xs[i]} for i in range(start, start + 20)
                ]
            }
            r = c.post("/v1/predict", json=body)
            assert r.status_code == 200
            answered = {p["request_id"] for p in r.json()["predictions"]}
            assert answered <= set(logged_ids(server.home))  # durable before the answer
            preds = r.json()["predictions"]
    correct = sum(int(p["pred"]) == labels[40 + k] for k, p in enumerate(preds))
    assert correct >= 14  # a trained champion answers (holdout accuracy measured once)
    assert trained_digits()[1] > 0.8


def test_champion_swap_shadow_metrics_and_feedback(server):
    reg = Registry(DataHome(server.home))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        first = c.post("/v1/predict", json=instances("swap-a", 2)).json()["predictions"]
        reg.set_alias("champion", "v0002", reason="swap test")
        reg.set_alias("shadow", "v0001", reason="shadow test")
        second = c.post("/v1/predict", json=instances("swap-b", 3)).json()["predictions"]
        fb = c.post("/v1/feedback", json={"request_id": "swap-b-0", "label": "3"})
        metrics = c.get("/metrics").text
        health = c.get("/healthz").json()
    assert {p["model_version"] for p in first} == {"v0001"}
    assert {p["model_version"] for p in second} == {"v0002"}  # no restart
    assert health["champion"] == "v0002" and health["shadow"] == "v0001"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "swap-b-2#shadow" not in logged_ids(server.home):
        time.sleep(0.1)  # off the response path: logged shortly after
    rows = [
        r
        for p in sorted((server.home / "predictions").rglob("*.parquet"))
        for r in pq.read_table(p, columns=["request_id", "role", "model_version"]).to_pylist()
    ]
    shadow = {r["request_id"]: r for r in rows if r["role"] == "shadow"}
    assert {f"swap-b-{i}#shadow" for i in range(3)} <= set(shadow)
    assert {r["model_version"] for r in shadow.values()} == {"v0001"}
    assert 'loopwright_predictions_total{model_version="v0002",role="champion"} 3.0' in metrics
    assert 'loopwright_http_requests_total{path="/v1/predict",status="200"}' in metrics
    assert fb.status_code == 200
    labels = [
        r for p in (server.home / "labels").rglob("*.parquet") for r in pq.read_table(p).to_pylist()
    ]
    assert [(x["request_id"], x["label"], x["source"]) for x in labels] == [
        ("swap-b-0", "3", "feedback")
    ]
    reg.clear_alias("shadow", reason="end of shadow test")
