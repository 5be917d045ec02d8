"""`curate` picks with `Queries.curation_picks` (the benchmarked DuckDB path): the same picks as
the previous path (`Queries.candidates` + `curation.sampling.select`) on a small log, queued
before anything is sent, and never an id already queued or labeled."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from curation.sampling import select
from flows.config import Config, CurationConfig
from flows.curate import pick, select_samples
from flows.runtime import Runtime
from retrain.digits.task import TASK
from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog
from storage.picks import audit_count
from storage.prediction_log import PredictionLog, make_batch
from storage.queue_log import QueueLog

CLASSES = ["a", "b", "c"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


PNG = TASK.encode_input(np.zeros((8, 8)))  # an input the default (digits) task can render


def log(home, ids, probs, start=0, role="champion", inputs="png", uris=None):
    inputs = [PNG] * len(ids) if inputs == "png" else inputs
    table = make_batch(
        request_ids=ids, features=np.zeros((len(ids), 2)), probs=probs, classes=CLASSES,
        model_version="v0001", role=role, inputs=inputs, input_uris=uris,
        ts=[T0 + timedelta(minutes=start + i) for i in range(len(ids))],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


@pytest.fixture
def home(tmp_path) -> DataHome:
    """60 champion rows (one logged again later), shadow rows, 2 queued ids, 1 labeled id."""
    home = DataHome(tmp_path / "home")
    probs = np.random.default_rng(0).dirichlet([1, 1, 1], 60)
    ids = [f"r{i:02d}" for i in range(60)]
    log(home, ids[:30], probs[:30])
    log(home, ids[30:], probs[30:], start=30)
    log(home, ["r03"], probs[:1], start=90)  # a duplicate, logged later: ignored
    log(home, [f"{i}#shadow" for i in ids[50:]], probs[:10], start=95, role="shadow")
    QueueLog(home).append(["r05", "r50"], "uncertainty")
    LabelLog(home).append([LabelEvent("r07", "a", "feedback", "ann", ts=T0)], CLASSES)
    return home


def runtime(home: DataHome, **curation) -> Runtime:
    cfg = replace(Config(), curation=replace(CurationConfig(window_rows=60), **curation))
    return Runtime(cfg, home)


def old_path(rt: Runtime, budget: int, seed: int, exclude=()):
    cfg = rt.cfg.curation
    candidates = rt.queries.candidates(cfg.window_rows)
    sel = select(candidates, budget=budget, strategy=cfg.strategy,
                 audit_share=cfg.audit_share, seed=seed, exclude=exclude)  # fmt: skip
    return candidates, sel


@pytest.mark.parametrize("strategy", ["least_confidence", "margin", "entropy"])
def test_same_picks_as_the_previous_path_without_audit(home, strategy):
    rt = runtime(home, strategy=strategy, audit_share=0.0)
    picks = pick(rt, 12, seed=3)
    candidates, sel = old_path(rt, 12, seed=3)
    assert picks["request_id"].to_pylist() == list(sel.request_ids)
    assert picks["reason"].to_pylist() == list(sel.reasons) == ["uncertainty"] * 12
    assert picks["score"].to_pylist() == pytest.approx(list(sel.scores))
    assert int(picks.schema.metadata[b"eligible"]) == candidates.num_rows


@pytest.mark.parametrize(("budget", "share"), [(10, 0.2), (7, 0.5), (100, 0.2)])
def test_same_rule_as_the_previous_path_with_audit(home, budget, share):
    """The audit draw is another seeded uniform draw (a hash of the id instead of NumPy's
    permutation); given the same audit rows, the uncertainty picks are select()'s."""
    rt = runtime(home, audit_share=share)
    picks = pick(rt, budget, seed=1)
    candidates, sel = old_path(rt, budget, seed=1)
    ids, reasons = picks["request_id"].to_pylist(), picks["reason"].to_pylist()
    assert reasons == list(sel.reasons)  # same counts, same order of kinds
    b = min(budget, candidates.num_rows)
    n_audit = audit_count(b, share)
    assert set(ids) <= set(candidates["request_id"].to_pylist()) and len(set(ids)) == b
    rest = select(candidates, budget=b - n_audit, strategy="margin", audit_share=0.0,
                  exclude=ids[:n_audit])  # fmt: skip
    assert ids[n_audit:] == list(rest.request_ids)


def test_select_samples_queues_and_never_repicks(home):
    rt = runtime(home)
    first = select_samples.fn(rt, 10, seed=1)
    assert first == {
        "candidates": 57, "not_shown": 0, "selected": 10, "uncertainty": 8, "audit": 2,
    }  # fmt: skip
    new = rt.queries.queued().to_pylist()[2:]  # after r05 and r50, queued by the fixture
    assert len(new) == 10 and all(r["score"] is not None for r in new)
    assert sorted(r["reason"] for r in new) == ["audit"] * 2 + ["uncertainty"] * 8
    second = select_samples.fn(rt, 10, seed=1)
    assert second["candidates"] == 47 and second["selected"] == 10
    ids = rt.queries.queued()["request_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 22
    assert "r07" not in ids and not any("#shadow" in i for i in ids)


def test_random_strategy_queues_uniform_picks_as_audit(home):
    rt = runtime(home, strategy="random")
    out = select_samples.fn(rt, 5, seed=2)
    assert out["audit"] == 5 and out["uncertainty"] == 0
    assert set(rt.queries.queued()["reason"].to_pylist()) == {"audit", "uncertainty"}
