"""The bench scripts' own logic (verdict comparison, demo stage summary, synthetic data) and
the loop benchmark's (shuffled labels, gate reasons, shared bootstrap, phase spans)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import synth
from bench.demo_bench import summarize
from bench.drift_bench import compare
from curation.drift import compute_drift


def test_compare_counts_mismatched_verdicts_and_methods():
    ref, cur = synth.window(3000, 1, False), synth.window(3000, 2, True)
    v = compute_drift(ref.features, cur.features, ref.pred, cur.pred, ref.confidence,
                      cur.confidence, n_classes=synth.N_CLASSES)  # fmt: skip
    columns = (*v.columns, v.prediction)
    summary = {
        "drifted_columns": [c.column for c in columns if c.drifted and c.column != "f4"],
        "per_column": {c.column: c.score + 1e-9 for c in columns},
        "methods": {
            c.column: "Wasserstein distance (normed)"
            if c.method == "wasserstein_normed"
            else "Jensen-Shannon distance"
            for c in columns
        },  # fmt: skip
        "dataset_drift": v.dataset_drift,
        "n_drifted": v.n_drifted - 1,
    }
    summary["methods"]["f5"] = "K-S p_value"
    out = compare(v, summary)
    assert out["columns"] == 66
    assert out["verdict_mismatches"] == (["f4"] if "f4" in v.drifted_columns else [])
    assert out["method_mismatches"] == ["f5"]
    assert out["max_abs_score_diff"] == pytest.approx(1e-9)


def test_synthetic_windows_have_every_column_kind():
    w = synth.window(2000, 0, True)
    assert w.features.shape == (2000, 64) and w.features.dtype == np.float32
    for j in synth.CONSTANT:
        assert (w.features[:, j] == 0).all()
    for j in synth.FEW_VALUES:
        assert len(np.unique(w.features[:, j])) <= 3
    assert len(np.unique(w.features[:, 20])) <= 17  # grey levels
    assert len(np.unique(w.features[:, 60])) > 1000  # continuous
    t = synth.prediction_table(10, 0, synth.day(0), False, id_offset=5)
    assert t["request_id"].to_pylist()[0] == "r0000000005"
    probs = np.array(t["probs"].to_pylist())
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(t["confidence"].to_numpy(), probs.max(axis=1))


def test_demo_summary_shares(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps({"stage_seconds": {"a": 30.0, "b": 10.0}, "seconds": 50.0,
                                "scenario": "s", "batches": 3}))  # fmt: skip
    out = summarize(path)
    assert out["total_seconds"] == 50.0 and out["under_goal"]
    assert out["stages"]["a"] == {"seconds": 30.0, "share": 0.6}
    assert out["unaccounted_seconds"] == 10.0


def test_shuffled_labels_permute_only_the_train_rows():
    import pyarrow as pa

    from flows.bench_run import shuffled_labels

    labeled = pa.table(
        {"request_id": [f"r{i}" for i in range(8)], "label": list("abcdefgh"), "x": range(8)}
    )
    train = ("r0", "r2", "r3", "r5", "r7")
    out = shuffled_labels(labeled, train, seed=4)
    got = dict(zip(out["request_id"].to_pylist(), out["label"].to_pylist(), strict=True))
    assert [got[r] for r in ("r1", "r4", "r6")] == ["b", "e", "g"]  # test rows keep theirs
    assert sorted(got[r] for r in train) == ["a", "c", "d", "f", "h"]
    assert [got[r] for r in train] != ["a", "c", "d", "f", "h"]
    assert out["x"].to_pylist() == list(range(8))
    assert shuffled_labels(labeled, train, seed=4).equals(out)  # seeded


def test_gate_reasons_are_the_failed_checks_first():
    from flows.bench_run import gate_reasons

    gate = {
        "reasons": ["eval rows ok", "accuracy ok"],
        "checks": [{"detail": "eval rows ok", "passed": True},
                   {"detail": "slice x worse", "passed": False}],
    }  # fmt: skip
    assert gate_reasons(gate) == ["slice x worse"]
    assert gate_reasons({**gate, "checks": []}) == ["eval rows ok", "accuracy ok"]
    assert gate_reasons(None) == []


def test_bootstrap_is_shared_by_policies_that_leave_its_sections_alone():
    from flows.bench_policies import Policy, default_policies, parse_policy
    from flows.bench_run import Job, _bootstrap_key

    keys = {
        _bootstrap_key(Job("s.toml", 3, p, None, "/tmp/x"))
        for p in default_policies(50, [0.1], [1, 2])
    }
    assert len(keys) == 1  # no policy overrides [retrain], [task] or [gate] but gate.enabled
    other = Policy("mine", None, {"retrain.seed": 1})
    assert _bootstrap_key(Job("s.toml", 3, other, None, "/tmp/x")) not in keys
    assert _bootstrap_key(Job("s.toml", 4, parse_policy("static", 50), None, "/tmp/x")) not in keys


def test_phase_spans_from_the_runs():
    from flows.bench_summary import phase_spans

    class Sc:
        phases = (type("P", (), {"attrs": {"device": "a"}})(), type("P", (), {"attrs": {}})())

    assert phase_spans([0, 0, 1, 1, 1], Sc()) == [
        {"index": 0, "first_batch": 0, "last_batch": 1, "attrs": {"device": "a"}},
        {"index": 1, "first_batch": 2, "last_batch": 4, "attrs": {}},
    ]


def test_finished_runs_are_logged_and_reused(tmp_path, monkeypatch):
    import flows.bench as bench
    from flows.bench_policies import parse_policy
    from flows.bench_run import Job

    calls = []

    def fake_run(job):
        calls.append((job.seed, job.policy.name))
        return {"seed": job.seed, "policy": job.policy.name, "labels_spent": job.seed}

    monkeypatch.setattr(bench, "run_job", fake_run)
    jobs = [Job("s.toml", sd, parse_policy(p, 50), None, "/tmp/x") for sd in (3, 4)
            for p in ("static", "oracle")]  # fmt: skip
    log, seen = tmp_path / "r.runs.jsonl", []
    first = bench.run_jobs(jobs, 1, seen.append, "cfg-a", log)
    assert sorted(calls) == [(3, "oracle"), (3, "static"), (4, "oracle"), (4, "static")]
    assert calls[0] == (3, "oracle")  # the long job of a seed first
    assert len(first) == len(seen) == 4 and len(log.read_text().splitlines()) == 4
    calls.clear()
    again = bench.run_jobs(jobs, 1, lambda r: None, "cfg-a", log)
    assert calls == [] and sorted(map(str, again)) == sorted(map(str, first))
    bench.run_jobs(jobs[:1], 1, lambda r: None, "cfg-b", log)  # another config: run again
    assert calls == [(3, "static")]


def test_project_title_names_scenario_policy_seed_and_run():
    # one Label Studio project per bench run, policy and seed: the via-Label-Studio test
    # checks only the prefix, so the whole format is pinned here
    from flows.bench_run import project_title

    assert project_title("tiny", "loop-uncertainty@5", 3, "20261201093000") == (
        "bench-tiny-loop-uncertainty@5-s3-20261201093000"
    )
