"""README "Watching a model you serve elsewhere", run as a person runs it: a scikit-learn model
on `load_wine` served elsewhere, its predictions in Parquet files, and only `loopwright`
commands (real CLI processes) against a real Prefect server and a real Label Studio:
log-predictions -> drift-check against a window of the log -> curate -> label -> sync-labels.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support import clean_env, run_loopwright

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLASSES = ["class_0", "class_1", "class_2"]
BUDGET = 12


def served_elsewhere(path: Path, n: int, start: datetime, seed: int, shift=0.0, bare=0):
    """A week of predictions of the user's own model, as their serving stack would write
    them: request_id, ts, model_version, features, probs, and the input as JSON (none for the
    first `bare` rows). Returns the true classes (what a labeler would answer)."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    wine = load_wine()
    model = LogisticRegression(max_iter=5000).fit(wine.data, wine.target)
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(wine.data.mean(0), np.cov(wine.data, rowvar=False), n)
    x[:, :8] += shift * wine.data.std(0)[:8]
    names = [c.replace("/", "_") for c in wine.feature_names]
    inputs = [json.dumps(dict(zip(names, map(float, row), strict=True))).encode() for row in x]
    inputs[:bare] = [None] * bare
    ids = [f"{path.stem}-{i:04d}" for i in range(n)]
    pq.write_table(pa.table({
        "request_id": ids,
        "ts": pa.array([start + timedelta(minutes=5 * i) for i in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "model_version": ["sklearn-lr-1"] * n,
        "features": pa.array(x.astype(np.float32).tolist(), pa.list_(pa.float32())),
        "probs": pa.array(model.predict_proba(x).astype(np.float32).tolist(),
                          pa.list_(pa.float32())),
        "input": pa.array(inputs, pa.binary()),
    }), path)  # fmt: skip
    return dict(zip(ids, (CLASSES[k] for k in model.predict(x)), strict=True))


def result(proc: subprocess.CompletedProcess) -> dict:
    """The JSON a `--json` command prints last (Prefect's log lines come before it)."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = "\n" + proc.stdout
    return json.loads(out[out.rindex("\n{") :])


def test_watching_a_model_served_elsewhere(tmp_path, labelstudio, prefect_server):
    url, token = labelstudio
    truth = served_elsewhere(tmp_path / "week1.parquet", 400, datetime(2026, 5, 1, tzinfo=UTC), 1)
    truth |= served_elsewhere(tmp_path / "week2.parquet", 400, datetime(2026, 5, 8, tzinfo=UTC),
                              2, bare=100)  # fmt: skip
    truth |= served_elsewhere(tmp_path / "week3.parquet", 400, datetime(2026, 5, 15, tzinfo=UTC),
                              3, shift=0.8)  # fmt: skip
    cfg = tmp_path / "loopwright.toml"
    cfg.write_text(f"""
[home]
path = "{tmp_path / "home"}"
[task]
plugin = ""
classes = {json.dumps(CLASSES)}
[drift]
reference = "window"
reference_end = "2026-05-08T00:00:00Z"
reference_rows = 400
window_rows = 300
[curation]
budget_per_batch = {BUDGET}
window_rows = 1200
[labelstudio]
url = "{url}"
project_title = "served-elsewhere"
""")
    env = clean_env(PREFECT_API_URL=prefect_server, LOOPWRIGHT_LABELSTUDIO_TOKEN=token,
                    PREFECT_SERVER_ANALYTICS_ENABLED="false")  # fmt: skip

    def lw(*args: str) -> subprocess.CompletedProcess:
        return run_loopwright(*args, "--config", str(cfg), env=env, timeout=600)

    for week in ("week1", "week2"):
        assert result(lw("log-predictions", "--input", str(tmp_path / f"{week}.parquet"),
                         "--json"))["rows"] == 400  # fmt: skip
    clean = result(lw("drift-check", "--json"))
    assert clean["status"] == "ok" and clean["rule"] == "p_value"
    assert clean["reference"]["kind"] == "window" and clean["reference"]["rows"] == 400
    assert clean["current"]["rows"] == 300 and clean["n_drifted"] <= 1
    assert Path(clean["report_html"]).is_file()  # the first check against this reference

    result(lw("log-predictions", "--input", str(tmp_path / "week3.parquet"), "--json"))
    shifted = result(lw("drift-check", "--json"))
    assert shifted["status"] == "drift" and shifted["n_drifted"] >= 8
    assert {f"f{j}" for j in range(8)} <= set(shifted["drifted_columns"])

    curated = result(lw("curate", "--seed", "1", "--json"))
    assert curated["selected"] == curated["imported"] == BUDGET
    assert curated["not_shown"] == 100  # week 2's rows logged without an input
    assert "100 candidate rows were not queued" in curated["note"]

    from curation.labelstudio_annotate import AnnotatingAdapter

    project = json.loads((tmp_path / "home" / "state" / "labelstudio.json").read_text())
    with AnnotatingAdapter(url, token) as adapter:
        pending = adapter.pending_tasks(project["project_id"])
        assert len(pending) == BUDGET
        assert all(rid in truth and not rid.startswith("week2-00") for _, rid in pending)
        for task_id, rid in pending:  # a person answers each task
            adapter.annotate(task_id, truth[rid])

    synced = result(lw("sync-labels", "--json"))
    assert synced["new_labels"] == BUDGET and synced["pending"] == 0
    status = result(lw("status", "--json"))
    assert status["labels"] == {"labelstudio": BUDGET} and status["predictions"] == 1200
    assert status["task"] == "monitor-only"
    again = result(lw("curate", "--seed", "2", "--json"))  # the next round: new rows only
    assert again["selected"] == BUDGET and again["already_present"] == 0
