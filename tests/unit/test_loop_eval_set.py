"""The loop's eval set on a fresh home (wine task, no group attr): audit labels to eval,
the other rows by hash, versions that only grow, train rows that never include an eval row, and a
report card that says which version it judged on."""

from __future__ import annotations

import pyarrow.compute as pc

from flows.loop.round import run_round
from storage.datasets import load_dataset, split_of
from storage.eval_sets import list_eval_sets, load_eval_set
from tests.support import wine_loop


def test_eval_set_versions_on_the_loop(tmp_path):
    loop, world = wine_loop(tmp_path, artifacts=False)
    loop.write_seed(world.seed_examples)
    boot = loop.retrain(force=True, reason="bootstrap")
    first = load_eval_set(loop.home, "ev-0001")
    seed_ids = world.seed_examples.request_ids
    # the first eval set: the seed rows whose hash says test, nothing else
    assert set(first.row_ids) == {r for r in seed_ids if split_of(r) == "test"}
    assert first.parent is None and first.composition["kind"] == {"seed": first.n}
    ds = load_dataset(loop.home, boot["dataset"])
    assert ds.eval_set == "ev-0001" and set(ds.test_ids) == set(first.row_ids)
    for i in range(3):
        run_round(loop, world.table(i), i, world.seed)
    out = loop.retrain(force=True, reason="test")
    ds = load_dataset(loop.home, out["dataset"])
    ev = load_eval_set(loop.home, ds.eval_set)
    assert list_eval_sets(loop.home)[-1] == ev.id and ev.parent is not None
    parent = load_eval_set(loop.home, ev.parent)
    assert ev.row_ids[: parent.n] == parent.row_ids  # lineage: the parent's rows, then new
    queued = loop.queries.queued()
    audit = set(queued.filter(pc.equal(queued["reason"], "audit"))["request_id"].to_pylist())
    labeled = set(loop.queries.labeled_examples()["request_id"].to_pylist())
    assert audit & labeled and audit & labeled <= set(ev.row_ids)  # audit labels: eval
    assert ev.composition["kind"]["audit"] == len(audit & labeled)
    assert not set(ds.train_ids) & set(ev.row_ids)
    other = {r for r in labeled - audit if r not in seed_ids}  # uncertainty picks: by hash
    assert {r for r in other if split_of(r) == "test"} <= set(ev.row_ids)
    assert {r for r in other if split_of(r) == "train"} <= set(ds.train_ids)
    card = loop.last_card
    assert card["eval_set"]["version"] == ev.id and card["eval_set"]["n"] == ev.n
    assert card["rows"]["request_id"] and len(card["rows"]["champion_hit"]) == ev.n
    names = [c["name"] for c in card["gate"]["checks"]]
    assert any(n.startswith("better on") for n in names)
