"""Task simulations are pure: the same (scenario, seed, sizes) gives the same world anywhere.

Why it matters: the demo and the benchmark replay one scenario with one seed and must see
identical request ids, timestamps, inputs, truth and annotator answers (parity), and
nothing may come from the wall clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from retrain.digits import simulation as digits_sim
from retrain.digits.task import TASK
from retrain.simulation import ORIGIN, SEED_TS, BatchWorld, SeedExamples, batch_ts
from tests import wine_simulation, wine_task

TS = pa.timestamp("us", tz="UTC")


def _fresh_digits_world(scenario, seed: int) -> BatchWorld:
    """A world built from scratch (past the per-process cache), as another process would."""
    return digits_sim._world.__wrapped__(scenario, seed, 600, 500)


@pytest.fixture(scope="module")
def digits():
    sim = TASK.simulation()
    scenario = sim.load_scenario(sim.find_scenario("tiny"))
    return sim, scenario, sim.world(scenario, 7, 600, 500)


def test_the_task_hook_returns_the_digits_simulation(digits) -> None:
    sim, scenario, world = digits
    assert isinstance(sim, digits_sim.DigitsSimulation)
    assert sim.world(scenario, 7, 600, 500) is world  # cached per process
    assert (world.seed, world.scenario.seed, world.n_batches, world.batch_size) == (7, 7, 4, 50)
    assert world.onset_batch == 1 and [world.phase(i) for i in range(4)] == [0, 1, 1, 1]


def test_same_seed_same_world_other_seed_other_world(digits) -> None:
    _, scenario, world = digits
    again = _fresh_digits_world(scenario, 7)
    assert again is not world
    for i in range(world.n_batches):
        assert again.table(i).equals(world.table(i))
        assert np.array_equal(again.labels(i), world.labels(i))
        assert np.array_equal(again.heldout(i)[0], world.heldout(i)[0])
    assert dict(again.truth) == dict(world.truth)
    assert again.seed_examples == world.seed_examples

    other = _fresh_digits_world(scenario, 8)
    assert other.table(0)["request_id"][0].as_py() == "tiny-s8-b0000-r0000"
    assert not set(other.truth) & set(world.truth)
    assert other.table(2)["input"].to_pylist() != world.table(2)["input"].to_pylist()
    # (tiny's drift is a pure rotation, so its held-out images do not depend on the seed)
    assert np.array_equal(other.heldout(2)[0], world.heldout(2)[0])


def test_table_ids_ts_and_truth(digits) -> None:
    _, _, world = digits
    t = world.table(2)
    assert t.schema == pa.schema(
        [
            ("request_id", pa.string()),
            ("input", pa.binary()),
            ("attrs", pa.map_(pa.string(), pa.string())),
            ("ts", TS),
        ]
    )
    ids = t["request_id"].to_pylist()
    assert ids[0] == "tiny-s7-b0002-r0000" and ids[-1] == "tiny-s7-b0002-r0049"
    assert all(re.fullmatch(r"tiny-s7-b\d{4}-r\d{4}", r) for r in world.truth)  # no clock
    ts = t["ts"].to_pylist()
    assert ts[0] == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert ts[49] == ORIGIN + timedelta(minutes=2, microseconds=49)
    every = [x for i in range(world.n_batches) for x in world.table(i)["ts"].to_pylist()]
    assert every == sorted(every) and len(set(every)) == len(every) == 200
    assert world.seed_examples.ts == SEED_TS == ORIGIN - timedelta(days=1) < min(every)
    assert dict(t["attrs"][3].as_py())["batch"] == "2"
    # the inputs are the task's encoding of the stream's images; truth = class names
    x = TASK.decode_inputs(t["input"].to_pylist())
    assert x.shape == (50, 1, 8, 8) and x.dtype == np.float32
    labels = world.labels(2)
    assert labels.dtype == np.int64 and not labels.flags.writeable
    assert [world.truth[r] for r in ids] == [TASK.classes[int(y)] for y in labels]
    assert len(world.truth) == 200
    with pytest.raises(IndexError, match="batch 4 is outside scenario 'tiny'"):
        world.table(4)


def test_seed_examples_and_heldout(digits) -> None:
    _, _, world = digits
    seed = world.seed_examples
    assert len(seed) == 600 and seed.request_ids[:2] == ("seed-0000", "seed-0001")
    assert set(seed.labels) == set(TASK.classes) and seed.attrs[0] == {"phase": "seed"}
    assert TASK.decode_inputs(list(seed.inputs[:3])).shape == (3, 1, 8, 8)
    assert not set(seed.request_ids) & set(world.truth)
    x, y = world.heldout(3)
    assert x.shape == (1500, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(y[:500], y[500:1000]) and not np.array_equal(x[:500], x[500:1000])
    assert world.heldout(3)[0] is x  # built once
    # rotated phase: the held-out images differ from the clean batch 0's
    assert not np.array_equal(world.heldout(0)[0], x)


def test_annotator_answers_are_the_same_in_two_worlds(digits) -> None:
    _, scenario, world = digits
    ids = list(world.truth)
    a = world.annotator(0.3, "bench")
    b = _fresh_digits_world(scenario, 7).annotator(0.3, "demo")
    answers = [a.answer(r) for r in ids]
    assert answers == [b.answer(r) for r in reversed(ids)][::-1]
    wrong = sum(x != world.truth[r] for x, r in zip(answers, ids, strict=True))
    assert 40 <= wrong <= 80  # about 30% of 200
    assert [world.annotator(0.0, "x").answer(r) for r in ids] == [world.truth[r] for r in ids]
    assert a.seed == 7


def test_world_arguments_are_checked(digits) -> None:
    sim, scenario, _ = digits
    with pytest.raises(ValueError, match="seed = -1"):
        sim.world(scenario, -1, 600, 500)
    with pytest.raises(ValueError, match="load it with"):
        sim.world({"name": "tiny"}, 1, 600, 500)
    with pytest.raises(ValueError, match="both must be >= 1"):
        sim.world(scenario, 1, 0, 500)


def test_batch_ts_and_seed_examples_checks() -> None:
    assert batch_ts(0, 1) == [ORIGIN]
    with pytest.raises(ValueError, match="must be >= 0"):
        batch_ts(-1, 3)
    with pytest.raises(ValueError, match="labels has 1 rows for 2 request_ids"):
        SeedExamples(("a", "b"), (b"1", b"2"), ("x",), ({}, {}))
    with pytest.raises(ValueError, match="aware"):
        SeedExamples(("a",), (b"1",), ("x",), ({},), ts=datetime(2026, 1, 1))


# -- wine: a task that is not digits, with its own scenario format -----------------------


@pytest.fixture(scope="module")
def wine():
    sim = wine_task.TASK.simulation()
    scenario = sim.load_scenario(sim.find_scenario("wine-shift"))
    return sim, scenario, sim.world(scenario, scenario.seed, 60, 40)


def test_wine_world_is_pure_and_shaped_like_the_task(wine) -> None:
    sim, scenario, world = wine
    again = wine_simulation._world.__wrapped__(scenario, scenario.seed, 60, 40)
    assert all(again.table(i).equals(world.table(i)) for i in range(world.n_batches))
    assert dict(again.truth) == dict(world.truth) and again.seed_examples == world.seed_examples
    other = sim.world(scenario, scenario.seed + 1, 60, 40)
    assert not set(other.truth) & set(world.truth)
    assert other.table(0)["input"].to_pylist() != world.table(0)["input"].to_pylist()

    t = world.table(1)
    assert t["request_id"][0].as_py() == f"wine-shift-s{scenario.seed}-b0001-r0000"
    assert t["ts"][0].as_py() == ORIGIN + timedelta(minutes=1)
    assert world.seed_examples.ts < min(world.table(0)["ts"].to_pylist())
    assert wine_task.TASK.decode_inputs(t["input"].to_pylist()).shape == (world.batch_size, 13)
    assert set(world.seed_examples.labels) == set(wine_task.CLASSES)
    assert len(world.seed_examples) == 60
    x, y = world.heldout(world.n_batches - 1)
    assert x.shape[0] >= 1000 and x.shape[1:] == (13,) and x.dtype == np.float32
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1, 2}
    assert world.onset_batch is not None and world.phase(world.onset_batch) == 1
    a, b = world.annotator(0.3, "a"), again.annotator(0.3, "b")
    assert [a.answer(r) for r in world.truth] == [b.answer(r) for r in world.truth]


def test_wine_streams_only_pool_rows_and_the_shift_moves_them(wine) -> None:
    _, scenario, world = wine
    held, seed_idx, pool = wine_simulation.wine_split(60, 40)
    assert (len(held), len(seed_idx), len(pool)) == (40, 60, 78)
    assert not set(held) & set(seed_idx) and not set(pool) & (set(held) | set(seed_idx))
    streamed = {
        int(dict(a)["wine"][5:])
        for i in range(world.n_batches)
        for a in world.table(i)["attrs"].to_pylist()
    }
    assert streamed <= set(pool.tolist())
    assert {int(a["wine"][5:]) for a in world.seed_examples.attrs} == set(seed_idx.tolist())
    # proline (feature 12) moves up by 2 std (~628) after the onset; jitter alone is ~16
    decode = wine_task.TASK.decode_inputs
    proline = [
        float(np.mean(decode(world.table(i)["input"].to_pylist())[:, 12] * wine_task.SCALE[12]))
        for i in (0, world.onset_batch)
    ]
    assert proline[1] - proline[0] > 300


def test_wine_scenario_errors_name_the_key(tmp_path) -> None:
    sim = wine_task.TASK.simulation()
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "w"\nseed = 1\nbatch_size = 10\n[[phase]]\nbatches = 2\nshift = { proline_ = 1 }\n'
    )
    with pytest.raises(ValueError, match="shift.proline_ is not a wine feature"):
        sim.load_scenario(bad)
    with pytest.raises(ValueError, match="leaves"):
        sim.world(sim.load_scenario(sim.find_scenario("wine-shift")), 1, 600, 500)


def test_write_seed_stamps_the_simulation_time(tmp_path, digits) -> None:
    import pyarrow.parquet as pq

    from storage.home import DataHome, StorageError
    from storage.queries import Queries
    from storage.seed import write_seed

    _, _, world = digits
    seed, home = world.seed_examples, DataHome(tmp_path)
    ids, inputs = list(seed.request_ids[:5]), list(seed.inputs[:5])
    x = TASK.decode_inputs(inputs)
    n = write_seed(
        home,
        ids,
        TASK.features(x),
        inputs,
        list(seed.labels[:5]),
        list(seed.attrs[:5]),
        classes=TASK.classes,
        ts=seed.ts,
    )
    assert n == 5
    ex = Queries(home).labeled_examples()
    assert ex["ts"].to_pylist() == [SEED_TS] * 5 and ex["request_id"].to_pylist() == ids
    label_ts = pq.read_table(home.labels).column("ts").to_pylist()
    assert label_ts == [SEED_TS] * 5
    # None keeps today's behaviour: now
    before = datetime.now(UTC)
    write_seed(home, ["late-1"], TASK.features(x[:1]), inputs[:1], ["3"])
    late = Queries(home).labeled_examples()
    assert late["request_id"][-1].as_py() == "late-1" and late["ts"][-1].as_py() >= before
    with pytest.raises(StorageError, match="pass an aware datetime"):
        write_seed(home, ["x-1"], TASK.features(x[:1]), inputs[:1], ["3"], ts=datetime(2026, 1, 1))


def test_simulation_doctests() -> None:
    import doctest

    import retrain.simulation

    result = doctest.testmod(retrain.simulation)
    assert result.attempted > 0 and result.failed == 0
