"""The path to a first champion with your own data (issue #8.3): `loopwright seed`, the
registry's explicit promotion, and the deployments `serve` registers. Real files on disk."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.home import DataHome, StorageError
from storage.queries import Queries
from tests.support import write_config
from tests.wine_task import CLASSES, wine_rows


@pytest.fixture
def wine(tmp_path):
    return write_config(
        tmp_path / "loopwright.toml", tmp_path / "home", task={"plugin": "tests.wine_task:TASK"}
    )


def seed_table(n: int = 60, **columns) -> pa.Table:
    ids, inputs, labels = wine_rows(n)
    base = {
        "request_id": pa.array(ids, pa.string()),
        "input": pa.array(inputs, pa.binary()),
        "label": pa.array(labels, pa.string()),
        "attrs": pa.array([[("source", "lab")]] * n, pa.map_(pa.string(), pa.string())),
    }
    for name, value in columns.items():
        if value is None:
            base.pop(name)
        else:
            base[name] = value
    return pa.table(base)


def seed(cfg, table: pa.Table, tmp_path, *extra: str):
    path = tmp_path / "seed.parquet"
    pq.write_table(table, path)
    return CliRunner().invoke(app, ["seed", "--input", str(path), "--config", str(cfg), *extra])


def squash(text: str) -> str:
    return " ".join(text.split())


def test_seed_writes_labeled_examples_once_and_says_what_the_gate_will_need(wine, tmp_path):
    result = seed(wine, seed_table(60), tmp_path)
    out = squash(result.output)
    assert result.exit_code == 0, out
    assert "seeded 60 labeled examples" in out and "the seed holds 60" in out
    assert "About 12 of them will be held out" in out and "min_eval_rows = 50" in out
    assert 'loopwright promote VERSION --reason "..."' in out and "about 250 examples" in out
    q = Queries(DataHome(tmp_path / "home"))
    assert q.label_counts() == {"seed": 60}
    labeled = q.labeled_examples()
    assert labeled.num_rows == 60
    assert {len(f) for f in labeled.column("features").to_pylist()} == {13}
    assert set(labeled.column("label").to_pylist()) <= set(CLASSES)

    again = seed(wine, seed_table(60), tmp_path, "--json")
    assert again.exit_code == 0, again.output
    info = json.loads(again.stdout)
    assert (info["written"], info["already_seeded"], info["seed_rows"]) == (0, 60, 60)
    assert q.label_counts() == {"seed": 60}


BAD_SEEDS = {
    "unknown class": (
        {"label": pa.array(["red"] * 60)},
        "label 'red' for request_id 'wine-",
    ),
    "integer labels": (
        {"label": pa.array([0] * 60, pa.int64())},
        "column 'label' has type int64, expected string: write class names as strings",
    ),
    "no label column": ({"label": None}, "column 'label' is missing: add it as string"),
    "unknown column": (
        {"score": pa.array([1.0] * 60)},
        "column 'score' is not a seed column",
    ),
    "undecodable input": (
        {"input": pa.array([b"abc"] * 60, pa.binary())},
        "inputs must be the bytes task 'wine' encodes",
    ),
    "duplicate ids": (
        {"request_id": pa.array(["same"] * 60)},
        "request_id 'same' appears 60 times",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SEEDS))
def test_a_bad_seed_file_is_refused_and_writes_nothing(case, wine, tmp_path):
    columns, expected = BAD_SEEDS[case]
    result = seed(wine, seed_table(60, **columns), tmp_path)
    out = squash(result.output)
    assert result.exit_code == 1, out
    assert out.startswith("error: seed file") and expected in out, out
    home = tmp_path / "home"
    assert not list(home.rglob("*.parquet"))


# -- the registry's explicit promotion ----------------------------------------------------------


def _registry(tmp_path):
    import torch

    from storage.registry import Registry

    reg = Registry(DataHome(tmp_path / "home").ensure())
    meta = {"task": "wine", "classes": list(CLASSES)}
    for i in range(2):
        reg.register({"w": torch.full((2,), float(i))}, meta)
    reg.register({"w": torch.zeros(2)}, {"task": "digits", "classes": list("0123456789")})
    return reg


def test_promote_moves_champion_with_reason_and_actor_in_the_history(tmp_path):
    reg = _registry(tmp_path)
    event = reg.promote(
        "v0001", reason="seed too small to gate", actor="promote by ana", task="wine"
    )
    assert reg.get("champion") == "v0001"
    assert (event["from"], event["to"], event["reason"], event["actor"]) == (
        None,
        "v0001",
        "seed too small to gate",
        "promote by ana",
    )
    reg.promote("v0002", reason="better on the new rows", task="wine", classes=CLASSES)
    assert [(e["from"], e["to"]) for e in reg.history()] == [(None, "v0001"), ("v0001", "v0002")]
    assert reg.rollback(reason="undo") == "v0001"  # a promotion is undone like any move


@pytest.mark.parametrize(
    ("version", "kwargs", "message"),
    [
        ("v0003", {"task": "wine"}, "v0003 is a 'digits' model and the configured task is 'wine'"),
        ("v0002", {"classes": ("a", "b", "c")}, "predicts classes ['class_0'"),
        ("v0009", {}, "model v0009 does not exist"),
        ("v0002", {"reason": " "}, "reason is empty"),
    ],
)
def test_promote_refuses_what_must_not_serve(tmp_path, version, kwargs, message):
    reg = _registry(tmp_path)
    kwargs = {"reason": "try", **kwargs}
    with pytest.raises(StorageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        reg.promote(version, **kwargs)
    assert reg.get("champion") is None and reg.history() == []


def test_promote_refuses_a_corrupted_model_and_the_current_champion(tmp_path):
    reg = _registry(tmp_path)
    reg.promote("v0001", reason="first")
    with pytest.raises(StorageError, match="v0001 is already champion"):
        reg.promote("v0001", reason="again")
    weights = tmp_path / "home" / "models" / "v0002" / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="v0002 is corrupted"):
        reg.promote("v0002", reason="broken")
    assert reg.get("champion") == "v0001" and len(reg.history()) == 1


# -- the deployments `serve` registers ---------------------------------------------------------


def test_deployments_reference_flows_by_module_with_absolute_paths(tmp_path, monkeypatch):
    from flows.config import load_config
    from flows.serve import deployments

    cfg_path = write_config(tmp_path / "loopwright.toml", tmp_path / "home")
    monkeypatch.chdir(tmp_path)
    found = {
        d.name: d for d in deployments(load_config("loopwright.toml"), "loopwright.toml", None)
    }
    assert {"drift-check", "curate", "sync-labels", "retrain", "retrain-periodic"} <= set(found)
    for d in found.values():
        assert d.entrypoint.startswith("flows.") and ":" not in d.entrypoint, d.entrypoint
        assert d.parameters["config_path"] == str(cfg_path.resolve())
        assert d.parameters["home"] == str((tmp_path / "home").resolve())
    assert found["retrain-periodic"].parameters["force"] is True
    assert found["retrain"].entrypoint == "flows.retrain.retrain_flow"


def test_every_entrypoint_loads_its_flow_in_a_fresh_process(tmp_path, monkeypatch):
    """What a served run does first: load the flow from its entrypoint, in a new process."""
    from flows.config import load_config
    from flows.serve import deployments

    monkeypatch.chdir(tmp_path)
    entrypoints = {d.name: d.entrypoint for d in deployments(load_config(None, env={}), None, None)}
    code = (
        "import json, sys\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        "eps = json.loads(sys.argv[1])\n"
        "flows = {n: load_flow_from_entrypoint(e, use_placeholder_flow=False)"
        " for n, e in eps.items()}\n"
        "print(json.dumps({n: f.name for n, f in flows.items()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(entrypoints)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path / "ph")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {n: "retrain" if n == "retrain-periodic" else n for n in entrypoints}
    assert names == expected
