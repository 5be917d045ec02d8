"""Serving faults against a real `serve-model` process on 127.0.0.1: malformed requests are
4xx naming the field, log nothing and leave the server serving; kill -9 under load with
`ack` loses no acknowledged prediction and leaves every part readable; a bounded load test."""

from __future__ import annotations

import threading
import time

import httpx
import pyarrow.parquet as pq
import pytest

from tests.serving_support import digits_home, instances, logged_ids, start_server

pytestmark = pytest.mark.integration

GOOD = [1.0] * 64
MALFORMED = [
    ({"instances": [{"request_id": "m", "input": [1] * 10}]}, "instances[0].input has 10 numbers"),
    (
        {"instances": [{"request_id": "m", "input": ["x"] * 64}]},
        "instances[0].input [0] is 'x', not a number",
    ),
    ({"instances": [{"request_id": "m", "input": [99] * 64}]}, "is outside 0..16"),
    ({"instances": [{"input": GOOD}]}, "instances[0].request_id is missing"),
    (
        {"instances": [{"request_id": "m", "input": GOOD}, {"request_id": "m", "input": GOOD}]},
        "instances[1].request_id = 'm' repeats",
    ),
    (
        {"instances": [{"request_id": str(i), "input": GOOD} for i in range(9)]},
        "at most 8 ([serving] max_instances)",
    ),
    (
        {"instances": [{"request_id": "m", "input": GOOD, "colour": 1}]},
        "instances[0].colour is not a known field",
    ),
    ({"instances": []}, "instances is empty"),
    (
        {"instances": [{"request_id": "m", "input": GOOD, "attrs": {"a": 1}}]},
        "instances[0].attrs.a must be an object of strings",
    ),
    (
        {"instances": [{"request_id": "m", "input": GOOD, "routing_key": ""}]},
        "instances[0].routing_key must be a non-empty string",
    ),
    (
        {
            "instances": [
                {"request_id": "ok", "input": GOOD},
                {"request_id": "m", "input": [1] * 63},
            ]
        },
        "instances[1].input has 63",
    ),
    ({"instances": {"request_id": "m"}}, "instances must be a JSON list"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return digits_home(tmp_path_factory.mktemp("serving-faults") / "home", versions=1)


def test_malformed_requests_are_4xx_naming_the_field_log_nothing_and_serving_goes_on(
    tmp_path, home
):
    srv = start_server(tmp_path, home, max_instances=8)
    try:
        before = logged_ids(home)
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for body, needle in MALFORMED:
                r = c.post("/v1/predict", json=body)
                assert 400 <= r.status_code < 500, body
                assert needle in r.json()["error"], (needle, r.json())
            r = c.post(
                "/v1/predict", content=b"{oops", headers={"content-type": "application/json"}
            )
            assert r.status_code == 422 and "body is not a JSON object" in r.json()["error"]
            assert logged_ids(home) == before  # nothing of a bad request is logged
            ok = c.post("/v1/predict", json=instances("after-bad", 2))
            assert ok.status_code == 200 and c.get("/healthz").status_code == 200
    finally:
        srv.stop()
    assert set(logged_ids(home)) - set(before) == {"after-bad-0", "after-bad-1"}


def _hammer(url: str, prefix: str, acked: list[str], stop: threading.Event, limit: int) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        i = 0
        while not stop.is_set() and i < limit:
            body = instances(f"{prefix}-{i}", 4)
            try:
                r = c.post("/v1/predict", json=body)
            except httpx.TransportError:
                return  # the server died mid-request: not acknowledged
            if r.status_code == 200:
                acked.extend(p["request_id"] for p in r.json()["predictions"])
            i += 1


def test_kill_9_under_load_with_ack_loses_no_acknowledged_prediction(tmp_path, home):
    srv = start_server(tmp_path, home)
    acked: list[str] = []
    stop = threading.Event()
    clients = [
        threading.Thread(target=_hammer, args=(srv.url, f"k{n}", acked, stop, 2000))
        for n in range(4)
    ]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill9()
    stop.set()
    for t in clients:
        t.join(15)
    assert len(acked) >= 100, "the load did not get going"
    parts = sorted((home / "predictions").rglob("*.parquet"))
    for part in parts:
        pq.read_table(part)  # every visible part is whole and readable
    missing = set(acked) - set(logged_ids(home))
    assert missing == set(), f"{len(missing)} acknowledged predictions missing"


def test_load_is_bounded_and_all_answers_are_logged(tmp_path, home):
    """At most 60 s, at most 4 x 150 requests of 4 instances, 127.0.0.1 only."""
    srv = start_server(tmp_path, home)
    acked: list[str] = []
    stop = threading.Event()
    started = time.monotonic()
    clients = [
        threading.Thread(target=_hammer, args=(srv.url, f"load{n}", acked, stop, 150))
        for n in range(4)
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join(60)
    stop.set()
    elapsed = time.monotonic() - started
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        stats = c.get("/v1/stats").json()["versions"]["v0001"]
    srv.stop()
    assert elapsed < 60 and len(acked) == 4 * 150 * 4
    assert stats["errors"] == 0 and stats["requests"] >= 600
    assert set(acked) <= set(logged_ids(home))
