"""The serving app in process (FastAPI's TestClient): what is answered is what is logged,
routing follows the registry without a restart, bad requests log nothing, and the bodies of
4xx name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from flows.config import load_config
from flows.serving.app import create_app
from flows.serving.settings import ServingConfig
from retrain.digits.task import TASK
from storage.home import DataHome
from storage.registry import Registry
from storage.routing import in_canary
from tests.serving_support import DIGITS_META, instances

BODY = {"instances": [{"request_id": "r1", "input": [4] * 64}]}


@pytest.fixture()
def home(tmp_path) -> DataHome:
    """Three registered (untrained, distinct) digits models; v0001 champion."""
    import torch

    h = DataHome(tmp_path / "home").ensure()
    reg = Registry(h)
    for seed in range(3):
        torch.manual_seed(seed)
        reg.register(TASK.build_model().state_dict(), DIGITS_META)
    reg.set_alias("champion", "v0001", reason="test")
    return h


def client(home: DataHome, **serving) -> TestClient:
    cfg = load_config(None, env={}, overrides={f"serving.{k}": v for k, v in serving.items()})
    return TestClient(create_app(cfg, home))


def rows(home: DataHome) -> list[dict]:
    parts = sorted(home.predictions.rglob("*.parquet"))
    return [r for p in parts for r in pq.read_table(p).to_pylist()]


def test_answered_predictions_are_in_the_log_when_the_answer_arrives(home):
    body = instances("a", 3, attrs={"device": "scanner-b"})
    with client(home) as c:
        r = c.post("/v1/predict", json=body)
        assert r.status_code == 200
        logged = {row["request_id"]: row for row in rows(home)}  # before the app closes
    preds = r.json()["predictions"]
    assert [p["request_id"] for p in preds] == ["a-0", "a-1", "a-2"]
    assert set(logged) == {"a-0", "a-1", "a-2"}
    for p, inst in zip(preds, body["instances"], strict=True):
        row = logged[p["request_id"]]
        assert (row["model_version"], row["role"], p["model_version"], p["role"]) == (
            "v0001",
            "champion",
            "v0001",
            "champion",
        )
        assert row["pred"] == p["pred"] == str(int(np.argmax(p["probs"])))
        np.testing.assert_allclose(row["probs"], p["probs"], rtol=1e-6)
        assert row["input"] == TASK.encode_input(TASK.parse_input(inst["input"]))
        assert dict(row["attrs"]) == {"device": "scanner-b"}
    assert len(list(home.predictions.rglob("*.parquet"))) == 1  # one request: one part


MALFORMED = [
    ({"instances": [{"request_id": "x", "input": [1] * 63}]}, "instances[0].input has 63 numbers"),
    (
        {"instances": [{"request_id": "x", "input": [1] * 63 + ["a"]}]},
        "instances[0].input [63] is 'a'",
    ),
    ({"instances": [{"input": [1] * 64}]}, "instances[0].request_id is missing"),
    (
        {"instances": [{"request_id": "", "input": [1] * 64}]},
        "instances[0].request_id must be a non-empty string",
    ),
    (
        {"instances": [{"request_id": 7, "input": [1] * 64}]},
        "instances[0].request_id must be a non-empty string",
    ),
    (
        {
            "instances": [
                {"request_id": "d", "input": [1] * 64},
                {"request_id": "d", "input": [2] * 64},
            ]
        },
        "instances[1].request_id = 'd' repeats instances[0].request_id",
    ),
    (
        {"instances": [{"request_id": "x", "input": [1] * 64, "colour": "red"}]},
        "instances[0].colour is not a known field",
    ),
    (
        {"instances": [{"request_id": "x", "input": [1] * 64}], "extra": 1},
        "extra is not a known field: remove it (known: instances)",
    ),
    ({"instances": []}, "instances is empty"),
    (
        {"instances": [{"request_id": str(i), "input": [1] * 64} for i in range(5)]},
        "at most 4 ([serving] max_instances)",
    ),
    (
        {"instances": [{"request_id": "x", "input": [1] * 64, "attrs": {"n": 3}}]},
        "instances[0].attrs.n must be an object of strings to strings",
    ),
    (
        {"instances": [{"request_id": "x", "input": [1] * 64, "attrs": ["a"]}]},
        "instances[0].attrs must be an object of strings",
    ),
    (
        {"instances": [{"request_id": "x#shadow", "input": [1] * 64}]},
        "must be non-blank and not end in '#shadow'",
    ),
    (
        {"instances": [{"request_id": "x", "input": [1] * 64, "routing_key": 5}]},
        "instances[0].routing_key must be a non-empty string",
    ),
    ({"rows": []}, "instances is missing"),
]


def test_malformed_requests_are_422_naming_the_field_and_log_nothing(home):
    with client(home, max_instances=4) as c:
        for body, needle in MALFORMED:
            r = c.post("/v1/predict", json=body)
            assert r.status_code == 422, body
            assert needle in r.json()["error"], (needle, r.json()["error"])
        r = c.post(
            "/v1/predict", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["error"].startswith("body is not a JSON object")
        assert rows(home) == []  # a bad instance anywhere: nothing of the batch is logged
        assert c.post("/v1/predict", json=BODY).status_code == 200  # still serving
    assert [r["request_id"] for r in rows(home)] == ["r1"]


def test_a_new_champion_serves_without_a_restart(home):
    with client(home) as c:
        assert c.post("/v1/predict", json=BODY).json()["predictions"][0]["model_version"] == "v0001"
        Registry(home).set_alias("champion", "v0002", reason="swap")
        body = {"instances": [{"request_id": "r2", "input": [4] * 64}]}
        assert c.post("/v1/predict", json=body).json()["predictions"][0]["model_version"] == "v0002"
        assert c.get("/healthz").json()["champion"] == "v0002"
    assert {(r["request_id"], r["model_version"]) for r in rows(home)} == {
        ("r1", "v0001"),
        ("r2", "v0002"),
    }


def test_a_label_shift_correction_is_served_and_logged_without_a_restart(home):
    weights = [4.0] + [0.5] * 9
    with client(home) as c:
        raw = np.array(c.post("/v1/predict", json=BODY).json()["predictions"][0]["probs"])
        Registry(home).set_prior("v0001", {"weights": weights, "shift": 0.3}, reason="EM")
        body = {"instances": [{"request_id": "r2", "input": [4] * 64}]}
        fixed = np.array(c.post("/v1/predict", json=body).json()["predictions"][0]["probs"])
    expected = raw * np.array(weights) / (raw * np.array(weights)).sum()
    np.testing.assert_allclose(fixed, expected, rtol=1e-5)
    assert fixed[0] > raw[0]
    logged = {r["request_id"]: r["probs"] for r in rows(home)}
    np.testing.assert_allclose(logged["r2"], fixed, rtol=1e-5)  # served = logged
    np.testing.assert_allclose(logged["r1"], raw, rtol=1e-5)


def test_canary_gets_the_keys_under_its_weight_and_a_key_sticks(home):
    reg = Registry(home)
    reg.set_alias("canary", "v0002", reason="rollout")
    reg.set_weight("canary", 0.3, reason="step")
    body = instances("k", 40)
    with client(home) as c:
        preds = c.post("/v1/predict", json=body).json()["predictions"]
        again = c.post(
            "/v1/predict",
            json={
                "instances": [
                    {"request_id": f"again-{i}", "input": [1] * 64, "routing_key": p["request_id"]}
                    for i, p in enumerate(preds)
                ]
            },
        ).json()["predictions"]
        stats = c.get("/v1/stats").json()["versions"]
    expected = ["canary" if in_canary(f"k-{i}", 0.3) else "champion" for i in range(40)]
    assert [p["role"] for p in preds] == expected
    assert 0 < expected.count("canary") < 40
    assert [p["role"] for p in again] == expected  # the routing key decides, not the id
    assert {p["model_version"] for p in preds if p["role"] == "canary"} == {"v0002"}
    logged = {(r["request_id"], r["role"], r["model_version"]) for r in rows(home)}
    assert ("k-0", expected[0], "v0002" if expected[0] == "canary" else "v0001") in logged
    assert stats["v0002"]["role"] == "canary" and stats["v0002"]["requests"] == 2
    assert stats["v0001"]["errors"] == 0


def test_shadow_scores_the_same_inputs_and_logs_role_shadow(home):
    Registry(home).set_alias("shadow", "v0003", reason="shadow test")
    with client(home) as c:
        preds = c.post("/v1/predict", json=instances("s", 4)).json()["predictions"]
        assert {p["role"] for p in preds} == {"champion"}  # the shadow never answers
        c.app.state.service.shadow.drain()
        metrics = c.get("/metrics").text
    by_id = {r["request_id"]: r for r in rows(home)}
    assert set(by_id) == {f"s-{i}" for i in range(4)} | {f"s-{i}#shadow" for i in range(4)}
    for i in range(4):
        shadow, champ = by_id[f"s-{i}#shadow"], by_id[f"s-{i}"]
        assert (shadow["role"], shadow["model_version"]) == ("shadow", "v0003")
        assert shadow["input"] == champ["input"] and shadow["features"] == champ["features"]
    assert 'loopwright_predictions_total{model_version="v0003",role="shadow"} 4.0' in metrics


def test_metrics_count_requests_by_status_and_predictions_by_version(home):
    with client(home) as c:
        c.post("/v1/predict", json=instances("m", 2))
        c.post("/v1/predict", json={"instances": []})
        text = c.get("/metrics").text
    assert 'loopwright_http_requests_total{path="/v1/predict",status="200"} 1.0' in text
    assert 'loopwright_http_requests_total{path="/v1/predict",status="422"} 1.0' in text
    assert 'loopwright_predictions_total{model_version="v0001",role="champion"} 2.0' in text
    assert 'loopwright_http_request_duration_seconds_count{path="/v1/predict"} 2.0' in text


def test_stats_since_keeps_the_later_requests_only(home):
    from datetime import UTC, datetime

    with client(home) as c:
        c.post("/v1/predict", json=instances("early", 1))
        cut = datetime.now(UTC).isoformat()
        c.post("/v1/predict", json=instances("late", 1))
        c.post("/v1/predict", json=instances("late2", 1))
        everything = c.get("/v1/stats").json()
        later = c.get("/v1/stats", params={"since": cut}).json()
        bad = c.get("/v1/stats", params={"since": "last tuesday"})
    assert everything["versions"]["v0001"]["requests"] == 3
    assert later["versions"]["v0001"]["requests"] == 2
    lat = later["versions"]["v0001"]["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"]
    assert (
        bad.status_code == 422
        and "since = 'last tuesday' is not an ISO-8601" in bad.json()["error"]
    )


def test_feedback_becomes_a_label_event_or_a_clear_error(home):
    from storage.queries import Queries

    with client(home) as c:
        c.post("/v1/predict", json=BODY)
        ok = c.post("/v1/feedback", json={"request_id": "r1", "label": "7", "annotator": "user-9"})
        unknown = c.post("/v1/feedback", json={"request_id": "nope", "label": "7"})
        not_a_class = c.post("/v1/feedback", json={"request_id": "r1", "label": "seven"})
        extra = c.post("/v1/feedback", json={"request_id": "r1", "label": "7", "why": "x"})
    assert ok.status_code == 200 and ok.json()["source"] == "feedback"
    assert (
        unknown.status_code == 404
        and "request_id = 'nope' was never served" in unknown.json()["error"]
    )
    assert (
        not_a_class.status_code == 422
        and "label = 'seven' is not a class" in not_a_class.json()["error"]
    )
    assert extra.status_code == 422 and "why is not a known field" in extra.json()["error"]
    labels = pq.read_table(sorted(home.labels.rglob("*.parquet"))[0]).to_pylist()
    assert [(x["request_id"], x["label"], x["source"], x["annotator"]) for x in labels] == [
        ("r1", "7", "feedback", "user-9")
    ]
    assert Queries(home).known_request_ids(["r1"]) == {"r1"}


def test_async_durability_answers_first_and_writes_at_close(home):
    with client(home, durability="async", async_flush_ms=60_000) as c:
        assert c.post("/v1/predict", json=instances("q", 3)).status_code == 200
        assert rows(home) == []  # queued, not yet written: the documented loss window
        assert c.post("/v1/feedback", json={"request_id": "q-1", "label": "1"}).status_code == 200
    assert sorted(r["request_id"] for r in rows(home)) == ["q-0", "q-1", "q-2"]


def test_a_log_that_cannot_be_written_acknowledges_nothing(home):
    with client(home) as c:
        service = c.app.state.service

        def broken(items):
            raise OSError("no space left on device")

        service.sink._gc._write = broken
        r = c.post("/v1/predict", json=BODY)
        assert r.status_code == 503 and "could not be logged" in r.json()["error"]
        stats = c.get("/v1/stats").json()["versions"]["v0001"]
    assert stats["errors"] == 1 and rows(home) == []


def test_no_champion_is_503_with_the_next_step(tmp_path):
    h = DataHome(tmp_path / "empty").ensure()
    with client(h) as c:
        r = c.post("/v1/predict", json=BODY)
        health = c.get("/healthz")
    assert r.status_code == 503 and "no champion model to serve" in r.json()["error"]
    assert health.status_code == 503


def test_openapi_shows_the_task_input_form(home):
    with client(home) as c:
        schema = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    inst = schema["components"]["schemas"]["Instance"]["properties"]["input"]
    assert "64 numbers in scikit-learn's 0..16 scale" in inst["description"]
    assert {"/v1/predict", "/v1/feedback", "/healthz", "/metrics", "/v1/stats"} <= set(
        schema["paths"]
    )


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("durability", "sometimes", "[serving] durability = 'sometimes' is not one of"),
        ("port", 70000, "[serving] port = 70000 must be a whole number in 1..65535"),
        ("max_instances", 0, "[serving] max_instances = 0"),
        ("group_commit_ms", -1.0, "[serving] group_commit_ms = -1.0 must lie between 0 and 1000"),
        ("group_commit_rows", 0, "[serving] group_commit_rows = 0"),
        ("async_flush_ms", 0, "[serving] async_flush_ms = 0"),
        ("stats_samples", 10, "[serving] stats_samples = 10"),
        ("host", " ", "[serving] host = ' '"),
    ],
)
def test_serving_config_range_checks_name_the_key(key, value, needle):
    with pytest.raises(ValueError) as exc:
        ServingConfig(**{key: value})
    assert needle in str(exc.value)


def test_shipped_serving_section_is_the_defaults():
    import tomllib
    from dataclasses import asdict

    shipped = tomllib.loads((Path(__file__).resolve().parents[2] / "loopwright.toml").read_text())
    assert shipped["serving"] == asdict(ServingConfig())
