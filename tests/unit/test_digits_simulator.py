"""The stream: a pure function of (scenario, seed, batch index)."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.digits.data import split_digits
from retrain.digits.scenario import find_scenario, load_scenario, parse_scenario
from retrain.digits.simulator import Stream


@pytest.fixture(scope="module")
def tiny() -> Stream:
    return Stream(load_scenario(find_scenario("tiny")))


def test_same_seed_same_batch_across_streams(tiny: Stream) -> None:
    again = Stream(load_scenario(find_scenario("tiny")))
    for i in (0, 3):
        a, b = tiny.batch(i), again.batch(i)
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
        assert a.request_ids == b.request_ids and a.attrs == b.attrs
    # order of requests does not matter: batch 3 first, then 0, gives the same batch 0
    assert np.array_equal(Stream(tiny.scenario).batch(0).images, tiny.batch(0).images)


def test_different_batches_and_seeds_differ(tiny: Stream) -> None:
    assert not np.array_equal(tiny.batch(1).images, tiny.batch(2).images)
    other = Stream(
        parse_scenario({"name": "tiny", "seed": 4, "batch_size": 50, "phase": [{"batches": 1}]})
    )
    assert not np.array_equal(other.batch(0).labels, tiny.batch(0).labels)


def test_batch_shape_ids_attrs_and_truth(tiny: Stream) -> None:
    b = tiny.batch(2)
    assert (
        b.images.shape == (50, 8, 8) and b.images.dtype == np.float32 and b.labels.dtype == np.int64
    )
    assert b.images.min() >= 0.0 and b.images.max() <= 1.0
    assert (b.index, b.phase, len(b)) == (2, 1, 50)
    assert b.request_ids[0] == "tiny-b0002-r0000" and b.request_ids[-1] == "tiny-b0002-r0049"
    assert {k: v for k, v in b.attrs[0].items() if k != "scan"} == {"phase": "1", "batch": "2"}
    # the scan attr names the pool image each row is a drifted copy of
    clean = Stream(tiny.scenario, run_id="x")
    assert all(a["scan"].startswith("scan-") for a in b.attrs)
    assert [int(a["scan"][5:]) for a in b.attrs] == [
        int(a["scan"][5:]) for a in clean.batch(2).attrs
    ]
    for a, label in zip(b.attrs, b.labels, strict=True):
        assert tiny.split.pool_y[int(a["scan"][5:])] == label
    assert b.truth()["tiny-b0002-r0007"] == str(b.labels[7])
    run = Stream(tiny.scenario, run_id="run42").batch(0)
    assert run.request_ids[0] == "run42-b0000-r0000"


def test_phase_attrs_are_stamped_on_rows() -> None:
    b = Stream(load_scenario(find_scenario("demo-rotation"))).batch(3)
    assert b.attrs[5] == {
        "phase": "1",
        "batch": "3",
        "device": "scanner-b",
        "scan": b.attrs[5]["scan"],
    }


def test_class_prior_shifts_label_frequencies() -> None:
    prior = [0, 0, 0, 0, 0, 0, 0, 0, 1, 3]
    sc = parse_scenario(
        {
            "name": "p",
            "seed": 1,
            "batch_size": 2000,
            "phase": [{"batches": 1, "class_prior": prior}],
        }
    )
    counts = np.bincount(Stream(sc).batch(0).labels, minlength=10) / 2000
    assert counts[:8].sum() == 0
    assert counts[9] == pytest.approx(0.75, abs=0.03)


def test_batches_sample_only_the_pool() -> None:
    split = split_digits()
    pool = {r.tobytes() for r in split.pool_x.reshape(-1, 64)}
    clean = Stream(
        parse_scenario({"name": "c", "seed": 1, "batch_size": 100, "phase": [{"batches": 1}]})
    )
    assert all(r.tobytes() in pool for r in clean.batch(0).images.reshape(-1, 64))


def test_holdout_is_transformed_like_the_batch_and_shared(tiny: Stream) -> None:
    x0, y0 = tiny.holdout(0)
    assert np.array_equal(x0, split_digits().holdout_x) and len(y0) == 500
    x3, _ = tiny.holdout(3, n=100)
    assert x3.shape == (100, 8, 8) and not np.array_equal(x3, split_digits().holdout_x[:100])
    again, _ = Stream(tiny.scenario).holdout(3, n=100)
    assert np.array_equal(x3, again)
