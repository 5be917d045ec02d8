"""The fast paths added for the speed benchmarks: curation picks ranked inside DuckDB
(`Queries.ranked_candidates` + `curation.sampling.pick`: the same top-k as scoring the
candidates' probabilities in Python) and window batches streamed for drift (same rows as the
windows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from curation.rules import CurationRules
from curation.sampling import entropy_scores, least_confidence, margin_scores, pick
from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import PICKS_SCHEMA, Queries
from storage.queue_log import QueueLog

CLASSES = ["a", "b", "c"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def log(home, ids, probs, start=0, role="champion", version="v0001"):
    n = len(ids)
    table = make_batch(
        request_ids=ids, features=np.arange(n * 2, dtype=float).reshape(n, 2), probs=probs,
        classes=CLASSES, model_version=version, role=role,
        ts=[T0 + timedelta(minutes=start + i) for i in range(n)],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


SCORERS = {"least_confidence": least_confidence, "margin": margin_scores, "entropy": entropy_scores}


def curation_picks(q, window, budget, strategy, audit_share=0.2, seed=0):
    ranked = q.ranked_candidates(window, strategy, budget, seed, audit_share)
    return pick(ranked, budget, CurationRules(strategy=strategy, audit_share=audit_share))


def top_k(candidates: pa.Table, strategy: str, k: int, exclude) -> tuple[list, list]:
    """The k most uncertain candidates, scored in Python from their probs (ties: smaller id)."""
    rows = [r for r in candidates.to_pylist() if r["request_id"] not in set(exclude)]
    scores = SCORERS[strategy](np.array([r["probs"] for r in rows])) if rows else []
    ranked = sorted(zip(scores, [r["request_id"] for r in rows], strict=True),
                    key=lambda t: (-t[0], t[1]))[:k]  # fmt: skip
    return [rid for _, rid in ranked], [float(x) for x, _ in ranked]


@pytest.fixture
def home(tmp_path) -> DataHome:
    home = DataHome(tmp_path / "home")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], 40)
    ids = [f"r{i:02d}" for i in range(40)]
    log(home, ids[:25], probs[:25])
    log(home, ids[25:], probs[25:], start=25)
    log(home, ["r03"], probs[:1], start=90)  # a duplicate, logged later: ignored
    log(home, ["s1"], probs[:1], start=91, role="shadow")
    QueueLog(home).append(["r05", "r30"], "uncertainty")
    event = LabelEvent("r07", "a", "feedback", "ann", ts=T0)
    LabelLog(home).append([event], CLASSES)
    return home


@pytest.mark.parametrize("strategy", ["least_confidence", "margin", "entropy"])
@pytest.mark.parametrize(
    ("window", "budget", "share"), [(None, 10, 0.2), (20, 7, 0.3), (30, 50, 0.0)]
)
def test_picks_follow_the_budget_rule(home, strategy, window, budget, share):
    q = Queries(home)
    candidates = q.candidates(40 if window is None else window)
    picks = curation_picks(q, window, budget, strategy, audit_share=share, seed=3)
    assert picks.schema.remove_metadata() == PICKS_SCHEMA
    eligible = set(candidates["request_id"].to_pylist())
    ids = picks["request_id"].to_pylist()
    reasons = picks["reason"].to_pylist()
    b = min(budget, len(eligible))
    n_audit = CurationRules(audit_share=share).audit_count(b)
    assert len(ids) == b and len(set(ids)) == b and set(ids) <= eligible
    assert picks.schema.metadata == {b"eligible": str(len(eligible)).encode()}
    assert reasons == ["audit"] * n_audit + ["uncertainty"] * (b - n_audit)
    # the uncertainty picks are exactly the Python top-k once the same audit rows are excluded
    expected, scores = top_k(candidates, strategy, b - n_audit, exclude=ids[:n_audit])
    assert ids[n_audit:] == expected
    assert picks["score"].to_pylist()[n_audit:] == pytest.approx(scores, abs=1e-6)


def test_audit_draw_is_seeded_and_uniform_over_eligible_rows(home):
    q = Queries(home)
    a = curation_picks(q, None, 6, "margin", audit_share=1.0, seed=1)
    assert a.equals(curation_picks(q, None, 6, "margin", audit_share=1.0, seed=1))
    draws = {tuple(curation_picks(q, None, 6, "margin", 1.0, seed=s)["request_id"].to_pylist())
             for s in range(5)}  # fmt: skip
    assert len(draws) == 5  # another seed, another draw
    rnd = curation_picks(q, None, 5, "random", audit_share=0.2, seed=1)
    assert rnd["reason"].to_pylist() == ["audit"] + ["random"] * 4


def test_picks_on_an_empty_home_and_bad_arguments(tmp_path):
    q = Queries(DataHome(tmp_path / "empty"))
    assert curation_picks(q, None, 5, "margin").num_rows == 0
    with pytest.raises(StorageError, match="strategy"):
        q.ranked_candidates(None, "smallest", 5)
    with pytest.raises(StorageError, match="budget"):
        q.ranked_candidates(None, "margin", -1)


@pytest.mark.parametrize("newest", [True, False])
def test_window_batches_hold_the_window_rows(home, newest):
    q = Queries(home)
    columns = ["request_id", "features", "pred", "confidence"]
    batches = list(q.window_batches(12, newest=newest, columns=columns, batch_rows=5))
    got = pa.Table.from_batches(batches).sort_by("request_id")
    window = (
        q.recent_predictions(12, columns=columns)
        if newest
        else q.first_predictions(12, columns=columns)
    )
    assert got.equals(window.sort_by("request_id"))
    assert list(Queries(DataHome(home.root / "nothing")).window_batches(5)) == []
