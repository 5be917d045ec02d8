"""A tiny smoke run of `loopwright bench loop`: one seed of scenarios/tiny.toml, through the
CLI as a user runs it; the JSON must hold every policy and field, with sane values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")
RUN_FIELDS = {
    "accuracy",
    "heldout_accuracy",
    "labels_cumulative",
    "labels_spent",
    "trigger_batches",
    "retrain_batches",
    "promotions",
    "degraded",
    "auc",
    "heldout_auc",
    "auc_vs_oracle",
    "n_triggers",
    "n_retrains",
    "n_promotions",
    "false_triggers",
    "detection_delay",
    "batches_to_recover",
    "harmful_promotions",
    "degraded_promoted",
}


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            LOOPWRIGHT,
            "bench",
            "loop",
            "--scenario",
            "scenarios/tiny.toml",
            "--seeds",
            "1",
            "--budgets",
            "0.1",
            "--multipliers",
            "1,2",
            "--workers",
            "1",
            "--fit-samples",
            "3000",
            "--json",
            str(out / "r.json"),
            "--plot",
            str(out / "r.png"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "medians of 1 seeds" in proc.stdout
    assert (out / "r.png").stat().st_size > 10_000
    return json.loads((out / "r.json").read_text())


def test_every_policy_with_every_field(doc):
    assert doc["schema"] == "loopwright.bench_loop/1"
    assert set(doc["policies"]) == {
        "static",
        "oracle",
        "periodic-random@5",
        "loop-uncertainty@5",
        "loop-random@5",
        "loop-random@10",
    }
    n = doc["scenario"]["n_batches"]
    for name, pol in doc["policies"].items():
        assert len(pol["median"]["accuracy"]) == n, name
        (run,) = pol["seeds"]
        assert set(run) >= RUN_FIELDS, (name, RUN_FIELDS - set(run))
        assert len(run["accuracy"]) == len(run["heldout_accuracy"]) == n
        assert all(0.0 <= a <= 1.0 for a in run["accuracy"] + run["heldout_accuracy"])
    assert set(doc["efficiency"]["auc"]) == {"5"}
    assert {"degraded_refused", "no_harmful_promotion", "detection_delay"} <= set(doc["goals"])


def test_values_are_sane(doc):
    p = doc["policies"]
    bs, n = doc["scenario"]["batch_size"], doc["scenario"]["n_batches"]
    static, oracle = p["static"]["seeds"][0], p["oracle"]["seeds"][0]
    assert static["labels_spent"] == 0 and static["n_retrains"] == 0
    assert oracle["labels_spent"] == bs * n and oracle["n_retrains"] == n == len(
        oracle["promotions"]
    )
    assert p["loop-uncertainty@5"]["seeds"][0]["labels_spent"] == 5 * n
    # tiny.toml: one clean batch, then 45 degrees; the static model suffers, the oracle adapts
    assert static["accuracy"][0] > 0.85 > max(static["accuracy"][1:])
    assert oracle["auc"] > static["auc"]
    assert oracle["auc_vs_oracle"] == pytest.approx(1.0)
    # all policies start from the same champion on the same stream
    assert len({pol["seeds"][0]["accuracy"][0] for pol in p.values()}) == 1
