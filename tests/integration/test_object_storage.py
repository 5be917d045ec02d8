"""The logs on object storage, against a real S3 server (moto, started by scripts/s3.sh):
whole objects only, concurrent writers lose and duplicate nothing, a writer killed mid-write
leaves nothing a reader trips on, and DuckDB answers the same queries as over the local disk.
"""

from __future__ import annotations

import signal
import time
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest

from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.objects import filesystem
from storage.prediction_log import PredictionLog
from storage.queries import Queries
from storage.schemas import PREDICTION_SCHEMA
from tests.reliability.helpers import overlapping_writers, spawn, wait_ready
from tests.reliability.workers import CLASSES, batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def homes(s3_server, tmp_path):
    """The same data home twice: logs on the local disk, and on S3 under a fresh prefix."""
    prefix = f"s3://{s3_server['bucket']}/t-{uuid.uuid4().hex[:8]}"
    local = DataHome(tmp_path / "local").ensure()
    remote = DataHome(tmp_path / "remote", prefix, s3_server["endpoint_url"]).ensure()
    return local, remote


def objects(home: DataHome) -> dict[str, dict]:
    return home.predictions.find()


def test_the_same_appends_give_the_same_answers_on_s3_as_on_disk(homes):
    local, remote = homes
    rng = np.random.default_rng(3)
    tables = [batch([f"r-{i:03d}-{j:02d}" for j in range(40)], rng, "v0001") for i in range(5)]
    dup = batch(["r-000-00", "r-000-01"], rng, "v0002")  # ids logged twice: readers keep one
    for home in homes:
        log = PredictionLog(home)
        for t in [*tables, dup]:
            log.append(t, classes=CLASSES)
        LabelLog(home).append(
            [
                LabelEvent("r-001-03", "7", "labelstudio", "ann"),
                LabelEvent("r-002-05", "1", "feedback", "u"),
            ],
            classes=CLASSES,
        )
    # every append is one object under <prefix>/predictions/date=YYYY-MM-DD/
    listed = objects(remote)
    assert len(listed) == 6
    assert all("/predictions/date=" in u and u.endswith(".parquet") for u in listed)
    assert not (remote.root / "predictions").exists()  # nothing of the logs on the disk

    ql, qr = Queries(local), Queries(remote)
    assert qr.count_predictions() == ql.count_predictions() == 200
    assert qr.count_predictions(model_version="v0002") == 0  # the first copy wins, as on disk
    cols = ["request_id", "pred", "margin"]
    assert (
        qr.recent_predictions(50, columns=cols).to_pylist()
        == ql.recent_predictions(50, columns=cols).to_pylist()
    )
    # the curation query (DuckDB over the parts, read through s3fs)
    rl = ql.ranked_candidates(None, "margin", budget=12, seed=5).to_pylist()
    rr = qr.ranked_candidates(None, "margin", budget=12, seed=5).to_pylist()
    assert rr == rl and len([r for r in rr if r["kind"] == "top"]) == 12
    assert qr.labeled_examples().column("request_id").to_pylist() == ["r-001-03", "r-002-05"]


def test_four_concurrent_writers_on_s3_lose_and_duplicate_nothing(homes, tmp_path, s3_server):
    _, remote = homes
    env = {
        "LOOPWRIGHT_STORAGE__LOGS_URL": remote.logs_url,
        "LOOPWRIGHT_STORAGE__ENDPOINT_URL": remote.endpoint_url,
    }
    span, rows = 1200, 100  # each range overlaps its neighbour's by half
    expected = overlapping_writers(remote.root, tmp_path / "go", span, rows, env=env)
    listed = objects(remote)
    assert len(listed) == 4 * span // rows  # one object per append, none overwritten
    fs = filesystem(remote.endpoint_url)
    raw_ids = []
    for url in listed:
        with fs.open(url, "rb") as f:
            raw_ids += pq.read_table(f, columns=["request_id"]).column("request_id").to_pylist()
    assert len(raw_ids) == 4 * span  # every append landed; overlaps stored twice
    q = Queries(remote)
    assert q.count_predictions() == len(expected)
    ids = q.recent_predictions(10 * len(expected), columns=["request_id"])["request_id"]
    assert len(ids) == len(set(ids.to_pylist())) == len(expected)
    assert set(ids.to_pylist()) == expected


def test_a_writer_killed_mid_append_on_s3_leaves_only_whole_objects(homes):
    """SIGKILL two writers at seeded moments, 3 rounds: every object listed is a whole
    Parquet file in the log's schema, and every batch a writer acknowledged is readable."""
    _, remote = homes
    env = {
        "LOOPWRIGHT_STORAGE__LOGS_URL": remote.logs_url,
        "LOOPWRIGHT_STORAGE__ENDPOINT_URL": remote.endpoint_url,
    }
    rng = np.random.default_rng(11)
    fs = filesystem(remote.endpoint_url)
    acked: dict[str, int] = {}
    for round_ in range(3):
        procs = [spawn("log", remote.root, f"k{round_}{w}", 40 + 2 * round_ + i, env=env)
                 for i, w in enumerate("ab")]  # fmt: skip
        for p in procs:
            wait_ready(p)
        time.sleep(float(rng.uniform(1.0, 3.0)))
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            out = p.stdout.read()
            p.wait()
            p.stdout.close()
            assert p.returncode == -signal.SIGKILL
            for line in out.splitlines():
                _, prefix, n = line.split()
                acked[prefix] = int(n)
        for url in objects(remote):
            with fs.open(url, "rb") as f:
                assert pq.read_schema(f).equals(PREDICTION_SCHEMA), url
                f.seek(0)
                assert pq.read_metadata(f).num_rows > 0
    assert len(acked) >= 3  # the kills came after real work
    wanted = [f"{p}-{j:05d}" for p, n in acked.items() for j in range(n)]
    found = Queries(remote).prediction_frame(wanted, columns=["request_id"])
    assert found.column("request_id").to_pylist() == wanted


def test_a_bucket_that_does_not_answer_is_an_error_naming_the_key(tmp_path, s3_server):
    bad = DataHome(tmp_path / "h", "s3://no-such-bucket-here/x", s3_server["endpoint_url"])
    with pytest.raises(StorageError) as err:
        bad.ensure()
    text = str(err.value)
    assert "storage.logs_url = 's3://no-such-bucket-here/x'" in text
    assert "AWS_ACCESS_KEY_ID" in text
    assert "test-secret-never-printed" not in text
    assert not list((tmp_path / "h").glob("predictions"))  # no local log folder made either


def test_the_loop_decides_alike_with_its_logs_on_s3(s3_server, tmp_path):
    """The engine (seed, first champion, 4 rounds of the wine task: log, drift, curate,
    label, sync, trigger, retrain, gate) on a local home and on a home whose logs are on S3:
    the same rounds, picks, labels and models, and every log's rows on S3 only."""
    from flows.loop.round import run_round
    from tests.support import wine_loop

    storage = {
        "logs_url": f"s3://{s3_server['bucket']}/loop-{uuid.uuid4().hex[:8]}",
        "endpoint_url": s3_server["endpoint_url"],
    }

    def run(root, tables):
        root.mkdir()
        loop, world = wine_loop(root, tables, artifacts=False)
        loop.write_seed(world.seed_examples)
        loop.retrain(force=True, reason="bootstrap")
        return loop, [run_round(loop, world.table(i), i, world.seed) for i in range(4)]

    local, rounds_l = run(tmp_path / "local", None)
    remote, rounds_r = run(tmp_path / "remote", {"storage": storage})
    from flows.status import collect

    assert collect(remote)["logs"] == storage["logs_url"] != collect(local)["logs"]
    assert [r.round for r in rounds_r] == [r.round for r in rounds_l]
    for a, b in zip(rounds_l, rounds_r, strict=True):
        assert a.curated == b.curated and a.synced == b.synced
        assert a.drift.get("status") == b.drift.get("status")
    assert remote.queries.label_counts() == local.queries.label_counts()
    assert remote.queries.count_predictions() == local.queries.count_predictions() == 160
    assert remote.registry.versions() == local.registry.versions()
    for v in local.registry.versions():
        assert remote.registry.meta(v)["train"]["loss"] == local.registry.meta(v)["train"]["loss"]
    on_s3 = {
        u.split("/")[2] for u in filesystem(s3_server["endpoint_url"]).find(storage["logs_url"])
    }
    assert on_s3 == {"predictions", "labels", "queue", "seed"}
    assert not any((remote.home.root / name).exists() for name in on_s3)


def test_a_compacted_local_log_copied_to_s3_reads_the_same(homes):
    """Moving an existing home's logs to object storage (`aws s3 sync` of the folder): a
    merged file and the parts it replaces, both copied during compaction's grace period,
    count once on S3 as on disk (the merged file's footer names its sources)."""
    from storage.compaction import compact_log
    from storage.parquet_parts import live_parts
    from storage.settings import StorageSettings

    local, remote = homes
    rng = np.random.default_rng(5)
    log = PredictionLog(local)
    for i in range(6):
        log.append(batch([f"m-{i}-{j:02d}" for j in range(30)], rng, "v0001"), classes=CLASSES)
    grace = StorageSettings(compact_min_age_s=0, compact_grace_s=3600, compact_min_parts=2)
    assert compact_log(local, "predictions", grace).groups == 1
    files = sorted(local.predictions.rglob("*.parquet"))
    assert len(files) == 7  # 6 parts kept for the grace period + the merged file
    for f in files:
        (remote.predictions / str(f.relative_to(local.predictions))).put(f.read_bytes())
    live = live_parts(remote.predictions)
    assert [p.name for p in live] == [p.name for p in live_parts(local.predictions)]
    assert len(live) == 1 and "-c" in live[0].name
    assert Queries(remote).count_predictions() == Queries(local).count_predictions() == 180
