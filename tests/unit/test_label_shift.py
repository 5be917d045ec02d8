"""Label-shift correction: EM finds a known class prior from exact posteriors, the correction
is recorded per version in the registry and read with the routing, and the engine's
drift-check corrects a champion whose traffic changed its class mix (P(x|y) unchanged), after
which score-batch logs the corrected posteriors."""

from __future__ import annotations

import doctest

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import flows.loop.adapt as adapt_mod
import retrain.label_shift as label_shift
from flows.config import load_config
from retrain.label_shift import LabelShiftRules, decide, em_prior, reweight, total_variation
from storage.home import DataHome, StorageError
from storage.registry import Registry
from storage.routing import read_routing
from storage.state import read_state
from tests.support import wine_loop


def test_doctests():
    assert doctest.testmod(label_shift).failed == 0
    assert doctest.testmod(adapt_mod).failed == 0
    import flows.status

    assert doctest.testmod(flows.status).attempted >= 2
    assert doctest.testmod(flows.status).failed == 0


def gaussian_world(prior: list[float], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three 1-D Gaussian classes (means -2, 0, 2, sd 1) drawn with `prior`; returns the exact
    Bayes posteriors under a uniform training prior, and the true classes."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=prior)
    x = rng.normal(np.array([-2.0, 0.0, 2.0])[y], 1.0)
    lik = np.exp(-0.5 * (x[:, None] - np.array([-2.0, 0.0, 2.0])[None, :]) ** 2)
    return lik / lik.sum(axis=1, keepdims=True), y


def test_em_finds_the_new_prior_and_the_correction_raises_accuracy():
    probs, y = gaussian_world([0.7, 0.2, 0.1], 20_000, seed=1)
    prior, iterations = em_prior(probs, [1 / 3] * 3)
    np.testing.assert_allclose(prior, [0.7, 0.2, 0.1], atol=0.02)
    assert 1 < iterations < 200
    raw = float((probs.argmax(axis=1) == y).mean())
    fixed = float((reweight(probs, prior / (1 / 3)).argmax(axis=1) == y).mean())
    assert fixed > raw + 0.02  # the Bayes rule under the true prior beats the old one
    # no shift: the estimate stays at the training prior, and decide() serves raw
    same, _ = gaussian_world([1 / 3] * 3, 20_000, seed=2)
    assert total_variation(em_prior(same, [1 / 3] * 3)[0], [1 / 3] * 3) < 0.02
    assert decide(same, [1 / 3] * 3, LabelShiftRules()).weights is None


def test_decide_needs_rows_and_a_shift_and_caps_weights():
    probs, _ = gaussian_world([0.9, 0.09, 0.01], 5_000, seed=3)
    few = decide(probs[:50], [1 / 3] * 3, LabelShiftRules(min_rows=100))
    assert (few.weights, few.prior, few.rows) == (None, None, 50)
    assert "50 rows < min_rows 100" in few.reason
    big = decide(probs, [1 / 3] * 3, LabelShiftRules(min_shift=0.9))
    assert big.weights is None and big.shift == pytest.approx(0.567, abs=0.03)
    capped = decide(probs, [1 / 3] * 3, LabelShiftRules(max_weight=2.0))
    assert capped.weights[0] == 2.0  # 0.9 / (1/3) = 2.7, capped
    assert capped.weights[2] == pytest.approx(0.03, abs=0.03)


def test_reweight_shapes_and_identity():
    p = np.array([[0.2, 0.8]])
    assert reweight(p, None) is not None and reweight(p, None).tolist() == [[0.2, 0.8]]
    with pytest.raises(ValueError, match="do not fit"):
        reweight(p, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative share per class"):
        em_prior(p, [0.5, -0.5])


@pytest.mark.parametrize(
    ("key", "value"),
    [("enabled", "yes"), ("min_rows", 0), ("min_shift", 1.5), ("max_weight", 0.5)],
)
def test_bad_keys_name_the_section_and_key(key, value):
    with pytest.raises(ValueError, match=rf"\[label_shift\] {key} = "):
        LabelShiftRules(**{key: value})
    with pytest.raises(ValueError, match=rf"label_shift(\] |\.){key}"):
        load_config(None, env={}, overrides={f"label_shift.{key}": value})


def test_the_registry_records_a_correction_per_version(tmp_path):
    import torch

    reg = Registry(DataHome(tmp_path / "home"))
    meta = {"task": "t", "classes": ["a", "b"]}
    v1 = reg.register({"w": torch.zeros(1)}, meta)
    v2 = reg.register({"w": torch.zeros(1)}, meta)
    reg.set_alias("champion", v1, reason="test")
    ev = reg.set_prior(v1, {"weights": [1.5, 0.5], "shift": 0.25}, reason="EM")
    assert (ev["kind"], ev["version"], ev["from"], ev["to"]) == ("prior", v1, None, [1.5, 0.5])
    routing = read_routing(reg.home)
    assert routing.weights_for(v1) == (1.5, 0.5) and routing.weights_for(v2) is None
    assert reg.priors()[v1]["shift"] == 0.25
    reg.set_prior(v1, None, reason="shift gone")
    assert read_routing(reg.home).weights_for(v1) is None
    assert [e["kind"] for e in reg.history()][-2:] == ["prior", "prior"]
    with pytest.raises(StorageError, match="weights must be 2 positive numbers"):
        reg.set_prior(v1, {"weights": [1.0]}, reason="bad")
    with pytest.raises(StorageError, match="v0009 does not exist"):
        reg.set_prior("v0009", None, reason="bad")
    assert read_routing(reg.home).champion == v1  # nothing else moved


def class_only(world, batches: range, keep: int) -> pa.Table:
    """The rows of `batches` whose true class index is `keep`: traffic whose class mix moved
    while each class looks as before."""
    parts = []
    for i in batches:
        t, y = world.table(i), world.labels(i)
        parts.append(t.filter(pa.array(y == keep)))
    return pa.concat_tables(parts)


def test_the_engine_corrects_a_champion_whose_class_mix_moved(tmp_path):
    loop, world = wine_loop(
        tmp_path,
        {"label_shift": {"enabled": True, "min_rows": 30, "window_rows": 200}},
        artifacts=False,
    )
    loop.write_seed(world.seed_examples)
    assert loop.retrain(force=True, reason="bootstrap")["promoted"]
    champion = loop.registry.get("champion")
    train_prior = loop.registry.meta(champion)["train_prior"]
    assert len(train_prior) == len(loop.task.classes) and sum(train_prior) == pytest.approx(
        1, abs=1e-4
    )
    # before enough rows: no estimate, nothing written
    first = loop.drift_check()["label_shift"]
    assert first["status"] == "raw" and first["written"] is False and first["rows"] == 0
    loop.score(class_only(world, range(0, 6), keep=0))
    verdict = loop.drift_check()["label_shift"]
    assert verdict["status"] == "corrected" and verdict["written"] is True
    assert verdict["rows"] >= 30 and verdict["shift"] >= 0.05
    weights = verdict["weights"]
    assert weights[0] > 1.0 and max(weights[1:]) < 1.0  # class 0 up, the others down
    assert read_routing(loop.home).weights_for(champion) == tuple(weights)
    assert read_state(loop.home, "label_shift")["status"] == "corrected"
    from flows.status import collect, label_shift_line

    info = collect(loop)["label_shift"]
    assert info["served"]["weights"] == weights
    assert label_shift_line(info).startswith(f"corrected: prior moved {verdict['shift']}")
    # a second check with the same traffic writes nothing new
    assert loop.drift_check()["label_shift"]["written"] is False
    # score-batch now logs the corrected posteriors of the champion
    later = class_only(world, range(6, 8), keep=0)
    loop.score(later)
    ids = later.column("request_id").to_pylist()
    logged = loop.queries.prediction_frame(ids, columns=["request_id", "probs"])
    logged = logged.sort_by("request_id")
    order = pc.sort_indices(later, [("request_id", "ascending")])
    x = loop.decode_inputs(later.take(order).column("input").to_pylist())
    raw = loop.predictor(champion)(x)
    expected = reweight(raw, weights)
    got = np.array(logged.column("probs").to_pylist())
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, raw, atol=1e-3)
