"""`loopwright suite add | list | show | remove` through Typer's CliRunner: what a person at
the terminal sees, errors included (one line naming the option and the fix, exit 1)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.home import DataHome
from tests.support import write_config
from tests.unit.test_storage_suites import home as labeled_home  # noqa: F401 (fixture)


@pytest.fixture
def cfg(tmp_path, labeled_home):  # noqa: F811
    return str(write_config(tmp_path / "lw.toml", labeled_home.root))


def run(cfg, *args):
    return CliRunner().invoke(app, ["suite", *args, "--config", cfg])


def test_add_list_show_remove(cfg, labeled_home):  # noqa: F811
    r = run(cfg, "add", "picked", "--request-ids", "r0,r2,ghost,r3", "--required")
    assert r.exit_code == 0, r.output
    assert "added suite picked: 2 rows, required, tolerance 0.000 vs champion" in r.output
    assert "dropped 1 without a label, 1 not in the prediction log or the seed" in r.output
    r = run(cfg, "add", "wrong", "--where", "pred <> label", "--min-accuracy", "0.5",
            "--description", "what v0001 got wrong")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrong: 2 rows, reported, min accuracy 0.500 — what v0001 got wrong" in r.output
    r = run(cfg, "list")
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("picked: 2 rows")
    listed = json.loads(run(cfg, "list", "--json").output)
    assert [s["name"] for s in listed] == ["picked", "wrong"]
    shown = json.loads(run(cfg, "show", "wrong").output)
    assert shown["request_ids"] == ["r1", "r4"] and shown["where"] == "pred <> label"
    r = run(cfg, "remove", "picked")
    assert r.exit_code == 0 and "removed suite picked (2 rows)" in r.output
    assert not (DataHome(labeled_home.root).root / "suites" / "picked.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "s"], "give exactly one of --request-ids and --where"),
        (["add", "s", "--request-ids", "r0", "--where", "true"], "exactly one of"),
        (["add", "Bad Name", "--request-ids", "r0"], "suite name 'Bad Name'"),
        (["add", "s", "--where", "pred <> "], "--where 'pred <> ' is not a valid condition"),
        (["add", "s", "--where", "nosuchcolumn = 1"], "DuckDB: "),
        (["add", "s", "--request-ids", "r2"], "selects no labeled row (1 matching rows have"),
        (["add", "s", "--request-ids", "r0", "--tolerance", "3"], "suite tolerance = 3.0"),
        (["show", "missing"], "no suite 'missing': known suites are []"),
        (["remove", "missing"], "no suite 'missing'"),
    ],
)
def test_errors_exit_1_with_the_fix(cfg, args, message):
    r = run(cfg, *args)
    assert r.exit_code == 1, r.output
    assert message in " ".join(r.output.split()), r.output
    assert "Traceback" not in r.output
