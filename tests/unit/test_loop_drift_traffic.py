"""`[drift] champion_reference = "traffic"`: the drift reference is the traffic a champion's
dataset came from, read from a real data home (the wine task's small loop)."""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from curation.drift_rules import traffic_end
from flows.loop.drift_window import champion_traffic
from flows.loop.round import run_round
from retrain.dataset_policy import SEED_SOURCE
from storage.datasets import load_dataset
from tests.support import wine_loop


def test_traffic_reference_is_the_served_rows_up_to_the_champions_newest(tmp_path):
    loop, world = wine_loop(tmp_path, {"drift": {"reference_rows": 100, "window_rows": 100}})
    loop.write_seed(world.seed_examples)
    first = loop.retrain(force=True, reason="bootstrap")["champion"]
    for i in range(4):  # 40 rows a batch, 10 labels each
        run_round(loop, world.table(i), i, world.seed)
    traffic = replace(loop.cfg, drift=replace(loop.cfg.drift, champion_reference="traffic"))
    loop.cfg = traffic
    # the bootstrap model's dataset holds seed rows only: no traffic, its training rows
    assert champion_traffic(loop, first) is None
    trained = loop.retrain(force=True, reason="test")["challenger"]
    ds = load_dataset(loop.home, loop.registry.meta(trained)["dataset_version"])
    labeled = loop.queries.labeled_examples()
    ids = pa.array([*ds.train_ids, *ds.test_ids], pa.string())
    held = labeled.filter(pc.is_in(labeled.column("request_id"), value_set=ids))
    served = held.filter(pc.not_equal(held.column("source"), SEED_SOURCE))
    assert served.num_rows > 0
    end = traffic_end(served.column("ts").to_pylist())
    got = champion_traffic(loop, trained)
    assert got is not None
    rows, what = got
    # the newest 100 champion-role rows before `end`, each with its input
    assert rows.num_rows == 100
    assert pc.max(rows.column("ts")).as_py() < end
    assert rows.column("input").null_count == 0
    everything = loop.queries.recent_predictions(10_000, columns=["request_id", "ts", "role"])
    before = everything.filter(
        pc.and_(
            pc.less(everything.column("ts"), end), pc.equal(everything.column("role"), "champion")
        )
    )
    newest = set(before.sort_by([("ts", "descending")]).column("request_id").to_pylist()[:100])
    assert set(rows.column("request_id").to_pylist()) == newest
    assert what.startswith(f"the 100 rows served before {end.isoformat()}")
    # more rows asked for than exist before `end`: its training rows instead
    loop.cfg = replace(
        traffic, drift=replace(traffic.drift, reference_rows=10_000, window_rows=10_000)
    )
    assert champion_traffic(loop, trained) is None
    # the default: training rows
    loop.cfg = replace(traffic, drift=replace(traffic.drift, champion_reference="training"))
    assert champion_traffic(loop, trained) is None
