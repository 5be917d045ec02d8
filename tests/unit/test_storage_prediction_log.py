"""make_batch computes the uncertainty scores exactly; every bad batch is refused by name."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from storage.home import DataHome, StorageError
from storage.prediction_log import PREDICTION_SCHEMA, PredictionLog, make_batch, validate_batch
from storage.queries import Queries

CLASSES = ["cat", "dog", "eel"]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def batch(n: int = 2, **kw) -> pa.Table:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=n)
    args = dict(
        request_ids=[f"r{i}" for i in range(n)],
        features=rng.normal(size=(n, 4)),
        probs=probs,
        classes=CLASSES,
        model_version="v0001",
        ts=T0,
    )
    args.update(kw)
    return make_batch(**args)


def test_make_batch_scores_hand_example():
    t = make_batch(
        request_ids=["a", "b"],
        features=np.array([[1.0, 2.0], [3.0, 4.0]]),
        probs=np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]]),
        classes=CLASSES,
        model_version="v0007",
        role="shadow",
        ts=T0,
        inputs=[b"\x01", None],
        attrs=[{"device": "scanner-b"}, {}],
    )
    assert t.schema == PREDICTION_SCHEMA
    assert t["pred"].to_pylist() == ["cat", "dog"]  # tie -> first class
    assert t["confidence"].to_pylist() == pytest.approx([0.7, 0.5], abs=1e-6)
    assert t["margin"].to_pylist() == pytest.approx([0.5, 0.0], abs=1e-6)
    h0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert t["entropy"].to_pylist() == pytest.approx([h0, math.log(2)], abs=1e-6)  # 0 ln 0 = 0
    assert t["role"].to_pylist() == ["shadow", "shadow"]
    assert t["features"].to_pylist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t["input"].to_pylist() == [b"\x01", None]
    assert t["attrs"].to_pylist() == [[("device", "scanner-b")], []]
    assert t["ts"].to_pylist() == [T0, T0]


def test_make_batch_converts_other_time_zones_to_utc():
    utc = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    t = batch(1, ts=[utc.astimezone(timezone(timedelta(hours=2)))])
    assert t["ts"][0].as_py() == utc
    assert str(t.schema.field("ts").type) == "timestamp[us, tz=UTC]"


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"probs": np.array([[0.5, 0.5], [0.5, 0.5]])}, "probs has 2 classes, the model has 3"),
        ({"probs": np.array([[np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]])}, "probs row 0 has NaN"),
        ({"probs": np.array([[0.2, 0.3, 0.5], [-0.1, 0.6, 0.5]])}, "probs row 1 has a negative"),
        ({"probs": np.array([[0.2, 0.3, 0.6], [0.2, 0.3, 0.5]])}, "probs row 0 sums to 1.1"),
        ({"features": np.array([[0.0] * 4, [np.inf] * 4])}, "features row 1 has NaN or inf"),
        ({"features": np.zeros((3, 4))}, "features has 3 rows for 2 request_ids"),
        ({"request_ids": ["a", "a"]}, "request_id 'a' appears 2 times"),
        ({"request_ids": ["a", " "]}, "request_id row 1 is empty"),
        (
            {"request_ids": [], "features": np.zeros((0, 4)), "probs": np.zeros((0, 3))},
            "batch is empty",
        ),
        ({"role": "primary"}, "role 'primary' is not one of"),
        ({"model_version": ""}, "model_version is empty"),
        ({"ts": datetime(2026, 1, 1)}, "ts[0] is"),
        ({"inputs": [b"x"]}, "inputs has 1 values for 2"),
        ({"attrs": [{"k": 1}, {}]}, "attrs[0]['k'] is int"),
    ],
)
def test_make_batch_errors_name_the_field(kw, needle):
    with pytest.raises(StorageError) as err:
        batch(2, **kw)
    assert needle in str(err.value)


def _without(table: pa.Table, name: str) -> pa.Table:
    return table.drop_columns([name])


def _replace(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _probs(rows) -> pa.Array:
    return pa.array(rows, pa.list_(pa.float32()))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda t: _without(t, "probs"), "column 'probs' is missing"),
        (
            lambda t: _replace(t, "request_id", pa.array([1, 2])),
            "column 'request_id' has type int64, expected string",
        ),
        (
            lambda t: _replace(t, "confidence", pa.array(["a", "b"])),
            "column 'confidence' has type string, expected float",
        ),
        (
            lambda t: _replace(
                t, "ts", pa.array([T0.replace(tzinfo=None)] * 2, pa.timestamp("us"))
            ),
            "column 'ts' has type timestamp[us] without a time zone",
        ),
        (
            lambda t: _replace(t, "probs", _probs([[float("nan"), 0.5, 0.5], [0.2, 0.3, 0.5]])),
            "probs row 0 has NaN",
        ),
        (
            lambda t: _replace(t, "probs", _probs([[0.2, 0.3, 0.5], [-0.5, 1.0, 0.5]])),
            "probs row 1 has a negative",
        ),
        (
            lambda t: _replace(t, "probs", _probs([[0.2, 0.3, 0.5], [0.2, 0.3, 0.3]])),
            "probs row 1 sums to 0.8",
        ),
        (
            lambda t: _replace(t, "probs", _probs([[0.5, 0.5], [0.5, 0.5]])),
            "probs has 2 classes, the model has 3",
        ),
        (lambda t: _replace(t, "pred", pa.array(["cat", "yak"])), "pred 'yak' is not one of"),
        (
            lambda t: _replace(t, "request_id", pa.array(["x", "x"])),
            "request_id 'x' appears 2 times",
        ),
        (lambda t: _replace(t, "request_id", pa.array(["x", "\t\u3000"])), "row 1 is empty"),
        (lambda t: _replace(t, "request_id", pa.array(["", "x"])), "request_id row 0 is empty"),
        (lambda t: t.slice(0, 0), "batch is empty"),
        (
            lambda t: t.append_column("score", pa.array([1, 2])),
            "column 'score' is not in the prediction log",
        ),
        (
            lambda t: _replace(t, "model_version", pa.array(["v1", None])),
            "column 'model_version' has nulls",
        ),
    ],
)
def test_validate_batch_errors_name_the_column(tmp_path, mutate, needle):
    with pytest.raises(StorageError) as err:
        validate_batch(mutate(batch(2)), classes=CLASSES)
    assert needle in str(err.value)
    if mutate(batch(2)).num_rows:  # append refuses the same batch with the same message
        with pytest.raises(StorageError, match=re.escape(needle)):
            PredictionLog(DataHome(tmp_path)).append(mutate(batch(2)), classes=CLASSES)
        assert not (tmp_path / "predictions").exists()


def test_validate_batch_casts_safe_types_and_fills_optional_columns():
    t = batch(2)
    wide = _replace(t, "probs", t["probs"].cast(pa.list_(pa.float64())))
    wide = _replace(wide, "confidence", t["confidence"].cast(pa.float64()))
    wide = _replace(wide, "request_id", t["request_id"].cast(pa.large_string()))
    wide = wide.drop_columns(["input", "input_uri", "attrs"])
    out = validate_batch(wide, CLASSES)
    assert out.schema == PREDICTION_SCHEMA
    assert out["probs"].to_pylist() == t["probs"].to_pylist()
    assert out["input"].null_count == 2


def test_append_partitions_by_date_in_chunks(tmp_path):
    home = DataHome(tmp_path)
    days = [T0, T0 + timedelta(days=1)] * 3
    t = batch(6, ts=days)
    log = PredictionLog(home)
    assert log.append(t, classes=CLASSES, chunk_rows=4) == 6
    assert sorted(p.name for p in home.predictions.iterdir()) == [
        "date=2026-03-01",
        "date=2026-03-02",
    ]
    assert len(list(home.predictions.rglob("*.parquet"))) == 4  # 2 chunks x 2 dates
    assert log.glob == f"{home.predictions}/**/*.parquet"
    assert Queries(home).count_predictions() == 6


def test_append_writes_nothing_when_a_later_chunk_is_bad(tmp_path):
    home = DataHome(tmp_path)
    t = batch(4)
    preds = t["pred"].to_pylist()
    bad = _replace(t, "pred", pa.array(preds[:3] + ["yak"]))  # only the second chunk is bad
    with pytest.raises(StorageError, match="pred 'yak' is not one of"):
        PredictionLog(home).append(bad, classes=CLASSES, chunk_rows=2)
    other = next(c for c in CLASSES if c != preds[2])
    wrong = _replace(t, "pred", pa.array(preds[:2] + [other, preds[3]]))
    with pytest.raises(StorageError, match=f"pred row 0 is '{other}'"):  # row 0 of chunk 2
        PredictionLog(home).append(wrong, classes=CLASSES, chunk_rows=2)
    with pytest.raises(StorageError, match="appears 2 times"):
        dup = _replace(t, "request_id", pa.array(["a", "b", "c", "a"]))
        PredictionLog(home).append(dup, chunk_rows=2)
    with pytest.raises(StorageError, match="appears 2 times"):  # checked after the cast too
        dup = _replace(t, "request_id", pa.array(["a", "b", "c", "a"], pa.large_string()))
        PredictionLog(home).append(dup, chunk_rows=2)
    assert list(home.root.rglob("*.parquet")) == []


def test_pred_must_be_a_top_class_of_probs():
    probs = _probs([[0.2, 0.7, 0.1], [0.5, 0.5, 0.0]])
    t = _replace(batch(2), "probs", probs)
    ok = _replace(t, "pred", pa.array(["dog", "dog"]))  # a tie: either top class passes
    assert validate_batch(ok, CLASSES)["pred"].to_pylist() == ["dog", "dog"]
    wrong = _replace(t, "pred", pa.array(["dog", "eel"]))
    with pytest.raises(StorageError) as err:
        validate_batch(wrong, CLASSES)
    assert str(err.value).startswith("pred row 1 is 'eel' (p=0) but probs peak at 'cat' (p=0.5)")
    two_chunks = pa.concat_tables([wrong.slice(0, 1), wrong.slice(1)])  # chunked columns
    with pytest.raises(StorageError, match="pred row 1 is 'eel'"):
        validate_batch(two_chunks, CLASSES)
    assert validate_batch(wrong)["pred"].to_pylist() == ["dog", "eel"]  # no classes: no check


def test_append_validates_each_chunk_once(tmp_path, monkeypatch):
    from storage import prediction_log

    calls = []
    real = prediction_log.check_values
    monkeypatch.setattr(
        prediction_log, "check_values", lambda t, *a: calls.append(t.num_rows) or real(t, *a)
    )
    assert PredictionLog(DataHome(tmp_path)).append(batch(5), CLASSES, chunk_rows=2) == 5
    assert calls == [2, 2, 1]


def test_append_writes_the_prediction_layout(tmp_path):
    """Dictionaries only on the repeating columns, no statistics on the vectors, and the
    parts still read back whole through DuckDB."""
    import pyarrow.parquet as pq

    home = DataHome(tmp_path)
    t = batch(3, attrs=[{"device": "a"}, {}, {"device": "b"}])
    PredictionLog(home).append(t, CLASSES)
    (part,) = home.predictions.rglob("*.parquet")
    meta = pq.ParquetFile(part).metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    with_dict = sorted(p for p, c in cols.items() if "RLE_DICTIONARY" in c.encodings)
    assert with_dict == [
        "attrs.key_value.key",
        "attrs.key_value.value",
        "model_version",
        "pred",
        "role",
    ]
    without_stats = sorted(p for p, c in cols.items() if not c.is_stats_set)
    assert without_stats == ["features.list.element", "probs.list.element"]
    assert cols["ts"].statistics.min == T0
    assert pq.read_table(part).select(t.column_names).equals(t)
    frame = Queries(home).prediction_frame(["r0", "r1", "r2"])
    assert frame.select(t.column_names).equals(t)
