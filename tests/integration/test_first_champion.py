"""A first champion for your own data, as a new user walks it (issue #8.3 and #8.5): a
13-feature, 3-class task of their own, 60 labeled rows, through the `loopwright` command
in child processes (so the terminal output is exactly what a person sees) against a real
Prefect server (the session's test harness) and Parquet on disk.

The path: `retrain --force` with nothing labeled fails in one line; `seed`; `retrain`
registers a model the gate cannot judge on 12 held-out rows and says how to proceed;
`score-batch` points at `promote`; `promote` records the decision; `score-batch` scores.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support import REPO, clean_env, run_loopwright, write_config
from tests.wine_task import wine_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def user(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    cfg = write_config(
        tmp_path / "loopwright.toml", tmp_path / "home", task={"plugin": "tests.wine_task:TASK"}
    )
    env = clean_env(
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PREFECT_HOME=str(tmp_path / "ph"),
        PYTHONPATH=str(REPO),  # the user's plugin (tests.wine_task) must be importable
    )
    ids, inputs, labels = wine_rows(60)
    pq.write_table(
        pa.table({"request_id": ids, "input": pa.array(inputs, pa.binary()), "label": labels}),
        tmp_path / "seed.parquet",
    )
    ids, inputs, _ = wine_rows(10, offset=100)
    pq.write_table(
        pa.table({"request_id": ids, "input": pa.array(inputs, pa.binary())}),
        tmp_path / "traffic.parquet",
    )
    return cfg, env, tmp_path


def lw(env, *args: str):
    proc = run_loopwright(*args, env=env, timeout=600)
    return proc.returncode, squash(proc.stdout + proc.stderr), proc.stdout + proc.stderr


def status(env, c) -> dict:
    proc = run_loopwright("status", "--json", *c, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_first_champion_from_a_small_seed_of_your_own(user):
    cfg, env, tmp = user
    c = ("--config", str(cfg))

    code, out, raw = lw(env, "retrain", "--force", *c)  # nothing labeled yet
    assert code == 1, raw
    assert "Traceback" not in raw, raw
    assert "error: no labeled examples to train on" in out and "loopwright seed --input" in out
    assert sum(1 for line in raw.splitlines() if "ERROR" in line or "error:" in line) == 1, raw

    code, out, raw = lw(env, "seed", "--input", str(tmp / "seed.parquet"), *c)
    assert code == 0 and "seeded 60 labeled examples" in out, raw

    code, out, raw = lw(env, "score-batch", "--input", str(tmp / "traffic.parquet"), *c)
    assert code == 1 and "no champion model to score with" in out, raw
    assert "train the first model with `loopwright retrain`" in out

    code, out, raw = lw(env, "retrain", *c)  # bootstrap: no champion, a trigger fires
    assert code == 0, raw
    assert "next: v0001 is registered as challenger, and there is no champion yet" in out
    assert "fewer than [gate] min_eval_rows = 50, so the gate cannot judge it" in out
    assert 'loopwright promote v0001 --reason "..."' in out
    card = json.loads((tmp / "home" / "reports" / "cards" / "v0001.json").read_text())
    n = card["eval_set"]["n"]
    assert 0 < n < 50 and card["eval_set"]["sources"] == {"seed": n}
    description = card["eval_set"]["description"]
    assert (
        f"seed {n}" in description
        and "no champion yet, so this first model is judged alone" in description
    )
    assert f"{n} rows are too few for the gate to judge it" in description
    assert (
        f"{n} rows are too few" in (tmp / "home" / "reports" / "cards" / "v0001.html").read_text()
    )

    code, out, raw = lw(env, "retrain", *c)  # the schedule again, nothing new: no v0002
    assert code == 0 and "no labels since v0001 was trained" in out, raw
    assert not (tmp / "home" / "models" / "v0002").exists()

    code, out, raw = lw(env, "score-batch", "--input", str(tmp / "traffic.parquet"), *c)
    assert code == 1 and 'loopwright promote v0001 --reason "..."' in out, raw
    info = status(env, c)
    assert info["champion"] is None and info["challenger"] == "v0001"
    assert "loopwright promote v0001" in info["next"]

    code, out, raw = lw(env, "promote", "v0001", "--reason", "trusted on a small seed", *c)
    assert code == 0, raw
    assert "champion None -> v0001: trusted on a small seed" in out
    history = json.loads((tmp / "home" / "registry.json").read_text())["history"]
    last = history[-1]
    assert (last["alias"], last["from"], last["to"]) == ("champion", None, "v0001")
    assert last["reason"] == "trusted on a small seed" and last["actor"].startswith("promote")

    code, out, raw = lw(env, "score-batch", "--input", str(tmp / "traffic.parquet"), *c)
    assert code == 0 and "scored 10 inputs with champion v0001" in out, raw
    code, out, raw = lw(env, "score-batch", "--input", str(tmp / "traffic.parquet"), *c)
    assert code == 0, raw
    assert "10 request ids were already in the prediction log and are ignored" in out
    info = status(env, c)
    assert info["champion"] == "v0001" and info["predictions"] == 10 and info["next"] is None
