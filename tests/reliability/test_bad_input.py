"""Bad input, through the `loopwright` command as a user meets it: prediction files, config,
scenario files and the registry. Each case must exit non-zero with an error that names the
field or key and the fix, and must leave every file of the data home as it was.
(Annotations, which need the real Label Studio server, are in test_bad_annotations.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.reliability.conftest import clone_home, write_config
from tests.reliability.helpers import fingerprint, squash

pytestmark = [pytest.mark.integration]

CLASSES = [str(i) for i in range(10)]


def probs(n: int, k: int = 10) -> list[list[float]]:
    p = np.full((n, k), 0.5 / (k - 1))
    p[:, 0] = 0.5
    return p.tolist()


def predictions(n: int = 4, **columns) -> pa.Table:
    """A valid file of predictions a model served elsewhere made, with `columns` replaced
    (None drops a column)."""
    base = {
        "request_id": pa.array([f"ext-{i}" for i in range(n)], pa.string()),
        "model_version": pa.array(["v0001"] * n, pa.string()),
        "features": pa.array(
            np.random.default_rng(0).random((n, 64)).tolist(), pa.list_(pa.float32())
        ),
        "probs": pa.array(probs(n), pa.list_(pa.float32())),
    }
    for name, value in columns.items():
        if value is None:
            base.pop(name)
        else:
            base[name] = value
    return pa.table(base)


def with_row(rows: list[list[float]]) -> pa.Array:
    return pa.array(rows + probs(4 - len(rows)), pa.list_(pa.float32()))


@dataclass
class Case:
    """`make(tmp, cfg)` writes what the case needs and returns the CLI arguments."""

    make: Callable[[Path, Path], list[str]]
    expect: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def log(table: pa.Table, *extra: str) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, cfg: Path) -> list[str]:
        path = tmp / "predictions.parquet"
        pq.write_table(table, path)
        return ["log-predictions", "--input", str(path), "--config", str(cfg), *extra]

    return make


def config(text: str, command: tuple[str, ...] = ("curate",)) -> Callable[[Path, Path], list[str]]:
    """The case's own config: the valid one with `text` appended (later keys win in a
    section are not allowed by TOML, so cases add new sections or keys)."""

    def make(tmp: Path, cfg: Path) -> list[str]:
        path = tmp / "bad.toml"
        path.write_text(cfg.read_text() + "\n" + text)
        return [*command, "--config", str(path)]

    return make


def replace(old: str, new: str, command: tuple[str, ...] = ("curate",)):
    def make(tmp: Path, cfg: Path) -> list[str]:
        path = tmp / "bad.toml"
        text = cfg.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
        return [*command, "--config", str(path)]

    return make


def scenario(text: str) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, cfg: Path) -> list[str]:
        path = tmp / "scenario.toml"
        path.write_text('name = "bad"\nseed = 1\nbatch_size = 50\n' + text)
        return ["demo", "--scenario", str(path), "--config", str(cfg)]

    return make


def args(*a: str) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, cfg: [*a, "--config", str(cfg)]


NAIVE = pa.array([datetime(2026, 1, 1)] * 4, pa.timestamp("us"))
NAN, INF = float("nan"), float("inf")

CASES: dict[str, Case] = {
    # -- prediction rows (loopwright log-predictions) ----------------------------------------
    "pred-missing-probs": Case(log(predictions(probs=None)), ("column 'probs' is missing", "add")),
    "pred-missing-request-id": Case(
        log(predictions(request_id=None)), ("column 'request_id' is missing", "add it as string")
    ),
    "pred-missing-features": Case(
        log(predictions(features=None)), ("column 'features' is missing", "add it as list")
    ),
    "pred-probs-wrong-type": Case(
        log(predictions(probs=pa.array([["0.5"] * 10] * 4, pa.list_(pa.string())))),
        ("column 'probs' has type list<element: string>, expected list<item: float>", "convert it"),
    ),
    "pred-request-id-wrong-type": Case(
        log(predictions(request_id=pa.array([1, 2, 3, 4], pa.int64()))),
        ("column 'request_id' has type int64", "convert it"),
    ),
    "pred-probs-nan": Case(
        log(predictions(probs=with_row([[NAN] + [0.1] * 9]))),
        ("rows 0..3", "probs row 0 has NaN or inf", "log softmax probabilities"),
    ),
    "pred-probs-inf": Case(
        log(predictions(probs=with_row([probs(1)[0], [INF] + [0.0] * 9]))),
        ("probs row 1 has NaN or inf", "not logits that overflowed"),
    ),
    "pred-probs-negative": Case(
        log(predictions(probs=with_row([[1.2, -0.2] + [0.0] * 8]))),
        ("probs row 0 has a negative value", "log probabilities (softmax output), not logits"),
    ),
    "pred-probs-not-summing-to-one": Case(
        log(predictions(probs=with_row([[0.5, 0.4] + [0.0] * 8]))),
        ("probs row 0 sums to 0.9000", "apply softmax over all classes"),
    ),
    "pred-class-count": Case(
        log(predictions(probs=pa.array(probs(4, 9), pa.list_(pa.float32())))),
        ("probs has 9 classes, the model has 10", "log the full probability vector"),
    ),
    "pred-unknown-class": Case(
        log(
            predictions(
                pred=pa.array(["eleven"] * 4),
                confidence=pa.array([0.5] * 4, pa.float32()),
                margin=pa.array([0.4] * 4, pa.float32()),
                entropy=pa.array([1.0] * 4, pa.float32()),
            )
        ),
        ("pred 'eleven' is not one of", "pred must be a class name of the task"),
    ),
    "pred-some-derived-columns": Case(
        log(predictions(pred=pa.array(["0"] * 4))),
        ("columns ['confidence', 'margin', 'entropy'] are missing while ['pred']", "or none"),
    ),
    "pred-duplicate-ids": Case(
        log(predictions(request_id=pa.array(["a", "b", "a", "c"]))),
        ("request_id 'a' appears 2 times in the batch", "give each prediction its own request id"),
    ),
    "pred-duplicate-ids-across-chunks": Case(
        log(predictions(request_id=pa.array(["a", "b", "c", "a"])), "--chunk-rows", "2"),
        ("rows 2..3: request_id 'a' appears more than once in the file", "its own request id"),
    ),
    "pred-empty-batch": Case(log(predictions().slice(0, 0)), ("is empty", "at least one")),
    "pred-naive-ts": Case(
        log(predictions(ts=NAIVE)),
        ("column 'ts' has type timestamp[us] without a time zone", "aware"),
    ),
    "pred-unknown-role": Case(
        log(predictions(role=pa.array(["primary"] * 4))),
        ("role 'primary' is not one of ['champion', 'shadow', 'canary']", "serving role"),
    ),
    "pred-features-nan": Case(
        log(predictions(features=pa.array([[NAN] * 64] * 4, pa.list_(pa.float32())))),
        ("features row 0 has NaN or inf", "impute or drop it"),
    ),
    "pred-unknown-column": Case(
        log(predictions(score=pa.array([1.0] * 4))),
        ("column 'score' is not in the prediction log schema", "put it in attrs"),
    ),
    "pred-not-parquet": Case(
        lambda tmp, cfg: (
            (tmp / "x.parquet").write_text("request_id,probs\n"),
            ["log-predictions", "--input", str(tmp / "x.parquet"), "--config", str(cfg)],
        )[1],
        ("is not a Parquet file", "pyarrow.parquet.write_table"),
    ),
    "pred-chunk-rows-zero": Case(
        log(predictions(), "--chunk-rows", "0"), ("--chunk-rows = 0", "positive number")
    ),
    # -- config ------------------------------------------------------------------------------
    "config-unknown-key": Case(
        replace("[drift]\n", "[drift]\nwindow_row = 5\n"),
        ("unknown key drift.window_row", "did you mean 'window_rows'?"),
    ),
    "config-unknown-section": Case(
        config("[gates]\ntolerance = 0.1\n"), ("unknown section [gates]", "did you mean [gate]?")
    ),
    "config-wrong-type": Case(
        replace("[drift]\n", '[drift]\nnumeric_threshold = "high"\n'),
        ("drift.numeric_threshold", "must be a number, got 'high'"),
    ),
    "config-out-of-range": Case(
        config("[curation]\naudit_share = 1.5\n"),
        ("[curation] audit_share = 1.5", "between 0 and 1"),
    ),
    "config-negative": Case(
        config("[trigger]\nmin_labels = -3\n"), ("[trigger] min_labels = -3", "use 0 or more")
    ),
    "config-bad-choice": Case(
        config('[curation]\nstrategy = "smart"\n'), ("[curation] strategy = 'smart'", "pick one of")
    ),
    "config-url-malformed": Case(
        replace('url = "http://127.0.0.1:9"', 'url = "127.0.0.1:8089"'),
        ("labelstudio.url = '127.0.0.1:8089' is not an http(s) URL", "http://127.0.0.1:8089"),
    ),
    "config-url-bad-port": Case(
        replace('url = "http://127.0.0.1:9"', 'url = "http://127.0.0.1:99999"'),
        ("labelstudio.url has an invalid port", "http://127.0.0.1:8089"),
    ),
    "config-url-with-password": Case(
        replace('url = "http://127.0.0.1:9"', 'url = "http://admin:hunter2secret@127.0.0.1:8089"'),
        ("labelstudio.url holds a user name or password", "LOOPWRIGHT_LABELSTUDIO_TOKEN"),
    ),
    "config-url-unreachable": Case(
        # sync-labels, not curate: curate with nothing to send never contacts Label Studio
        args("sync-labels"),
        ("cannot reach Label Studio at http://127.0.0.1:9", "start it with `make labelstudio-up`"),
        env={"LOOPWRIGHT_LABELSTUDIO__RETRIES": "0"},
    ),
    "config-token-in-file": Case(
        replace("timeout_s = 10.0", 'timeout_s = 10.0\ntoken = "s3cr3t-in-file"'),
        ("labelstudio.token may not be written in a config file", "LOOPWRIGHT_LABELSTUDIO_TOKEN"),
    ),
    "config-env-wrong-type": Case(
        args("drift-check"),
        ("LOOPWRIGHT_DRIFT__WINDOW_ROWS", "must be a whole number, got 'lots'"),
        env={"LOOPWRIGHT_DRIFT__WINDOW_ROWS": "lots"},
    ),
    "config-env-unknown-section": Case(
        args("drift-check"),
        ("unknown section 'drfit'", "LOOPWRIGHT_DRFIT__WINDOW_ROWS"),
        env={"LOOPWRIGHT_DRFIT__WINDOW_ROWS": "5"},
    ),
    "config-not-toml": Case(config("[drift\n"), ("is not valid TOML", "line")),
    "config-missing-file": Case(
        lambda tmp, cfg: ["drift-check", "--config", str(tmp / "nope.toml")],
        ("config file", "does not exist: pass --config PATH to an existing file"),
    ),
    "config-home-unwritable": Case(
        lambda tmp, cfg: (
            (tmp / "a-file").write_text("x"),
            ["drift-check", "--config", str(cfg), "--home", str(tmp / "a-file" / "home")],
        )[1],
        ("is not writable", "point LOOPWRIGHT_HOME (home.path) elsewhere"),
    ),
    "config-home-is-a-file": Case(
        lambda tmp, cfg: (
            (tmp / "a-file").write_text("x"),
            ["drift-check", "--config", str(cfg), "--home", str(tmp / "a-file")],
        )[1],
        ("is a file, not a folder", "point LOOPWRIGHT_HOME (home.path) at a folder"),
    ),
    "curate-negative-budget": Case(
        args("curate", "--budget", "-1"), ("budget = -1", "zero or more")
    ),
    # -- scenario files (loopwright demo --scenario) -----------------------------------------
    "scenario-unknown-key": Case(
        scenario("colour = 3\n[[phase]]\nbatches = 1\n"),
        ("unknown top-level key 'colour'", "known: name, seed, batch_size, phase"),
    ),
    "scenario-unknown-phase-key": Case(
        scenario("[[phase]]\nbatches = 2\nrotaton = 30\n"),
        ("phase 1: unknown key 'rotaton'", "known: batches, rotation"),
    ),
    "scenario-negative-batches": Case(
        scenario("[[phase]]\nbatches = -2\n"), ("phase 1: batches = -2", "whole number >= 1")
    ),
    "scenario-zero-batch-size": Case(
        lambda tmp, cfg: (
            (tmp / "s.toml").write_text(
                'name = "x"\nseed = 1\nbatch_size = 0\n[[phase]]\nbatches = 1\n'
            ),
            ["demo", "--scenario", str(tmp / "s.toml"), "--config", str(cfg)],
        )[1],
        ("batch_size = 0", "must be a whole number > 0"),
    ),
    "scenario-prior-length": Case(
        scenario("[[phase]]\nbatches = 1\nclass_prior = [1, 2, 3]\n"),
        ("phase 1: class_prior has 3 values, the task has 10 classes", "one weight per class"),
    ),
    "scenario-ramp-missing-end": Case(
        scenario("[[phase]]\nbatches = 3\nrotation = { start = 0 }\n"),
        ("phase 1: rotation ramp is missing 'end'", "write rotation = {start = ..., end = ...}"),
    ),
    "scenario-missing-file": Case(
        lambda tmp, cfg: ["demo", "--scenario", str(tmp / "none.toml"), "--config", str(cfg)],
        ("none.toml' does not exist", "pass --scenario PATH to a TOML file"),
    ),
    # -- registry ----------------------------------------------------------------------------
    "registry-alias-to-missing-version": Case(
        lambda tmp, cfg: (edit_registry(cfg, "champion", "v0009"), score_args(tmp, cfg))[1],
        ("alias champion points to v0009", "is missing", "loopwright rollback"),
    ),
    "registry-alias-escapes": Case(
        lambda tmp, cfg: (edit_registry(cfg, "champion", "../../etc"), score_args(tmp, cfg))[1],
        (
            "alias champion in",
            "points to '../../etc', which is not a version name",
            "restore registry.json",
        ),
    ),
    "registry-corrupted-weights": Case(
        lambda tmp, cfg: (flip_weights(cfg), score_args(tmp, cfg))[1],
        ("model v0001 is corrupted: weights.pt sha256", "restore it or roll back"),
    ),
    "registry-file-not-json": Case(
        lambda tmp, cfg: (
            (home_of(cfg) / "registry.json").write_text("{oops"),
            score_args(tmp, cfg),
        )[1],
        ("registry.json is not valid JSON", "restore it from a backup"),
    ),
}


def home_of(cfg: Path) -> Path:
    return cfg.parent / "home"


def edit_registry(cfg: Path, alias: str, version: str) -> None:
    path = home_of(cfg) / "registry.json"
    data = json.loads(path.read_text())
    data["aliases"][alias] = version
    path.write_text(json.dumps(data))


def flip_weights(cfg: Path) -> None:
    path = home_of(cfg) / "models" / "v0001" / "weights.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def score_args(tmp: Path, cfg: Path) -> list[str]:
    from retrain.digits.task import TASK

    path = tmp / "incoming.parquet"
    image = np.zeros((8, 8), dtype=np.float32)
    pq.write_table(
        pa.table(
            {"request_id": ["in-1"], "input": pa.array([TASK.encode_input(image)], pa.binary())}
        ),
        path,
    )
    return ["score-batch", "--input", str(path), "--config", str(cfg)]


@pytest.fixture
def user(tmp_path, champion_template, monkeypatch):
    """A data home with a champion, the user's config, and a place for their files."""
    clone_home(champion_template, tmp_path / "home")
    cfg = write_config(tmp_path / "loopwright.toml", tmp_path / "home")
    files = tmp_path / "files"
    files.mkdir()
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", "tok-never-used-0123456789")
    return cfg, files


def run(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(app, args, env=env)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_clearly_and_changes_nothing(name, user):
    case = CASES[name]
    cfg, files = user
    arguments = case.make(files, cfg)  # may damage the home on purpose: fingerprint after
    before = fingerprint(home_of(cfg))
    result = run(arguments, case.env)
    out = squash(result.output)
    assert result.exit_code != 0, out
    assert out.startswith("error: ") or "\nerror: " in result.output, out
    assert "Traceback" not in result.output
    for text in case.expect:
        assert text in out, f"{text!r} not in: {out}"
    assert "hunter2secret" not in out and "s3cr3t-in-file" not in out
    assert "tok-never-used-0123456789" not in out
    assert fingerprint(home_of(cfg)) == before


def test_a_good_file_is_logged_in_chunks(user):
    """The valid twin of the cases above: a file larger than a chunk is written chunk by
    chunk (bounded memory) and every row is readable once."""
    from storage.home import DataHome
    from storage.queries import Queries

    cfg, files = user
    table = predictions(n=2500)
    pq.write_table(table, files / "ok.parquet", row_group_size=700)
    result = run(
        ["log-predictions", "--input", str(files / "ok.parquet"), "--config", str(cfg),
         "--chunk-rows", "1000", "--json"], {},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 2500
    home = DataHome(home_of(cfg))
    parts = list(home.predictions.rglob("*.parquet"))
    assert len(parts) >= 3 and all(pq.read_metadata(p).num_rows <= 1000 for p in parts)
    got = Queries(home).prediction_frame([f"ext-{i}" for i in range(2500)], columns=["pred"])
    assert got.num_rows == 2500 and set(got.column("pred").to_pylist()) == {"0"}


def test_bad_row_in_the_last_chunk_writes_nothing(user):
    cfg, files = user
    rows = probs(2500)
    rows[-1] = [0.5, 0.4] + [0.0] * 8
    pq.write_table(
        predictions(n=2500, probs=pa.array(rows, pa.list_(pa.float32()))), files / "bad.parquet"
    )
    before = fingerprint(home_of(cfg))
    result = run(
        ["log-predictions", "--input", str(files / "bad.parquet"), "--config", str(cfg),
         "--chunk-rows", "1000"], {},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "rows 2000..2499: probs row 499 sums to 0.9000" in squash(result.output)
    assert fingerprint(home_of(cfg)) == before


def test_rollback_repairs_an_alias_to_a_missing_version(user):
    """The fix named by the error above works: rollback needs no readable current champion."""
    from storage.home import DataHome
    from storage.registry import Registry

    cfg, _ = user
    reg = Registry(DataHome(home_of(cfg)))
    reg.register(*reg.load("v0001"))
    reg.set_alias("champion", "v0002", reason="test")
    edit_registry(cfg, "champion", "v0009")
    result = run(["rollback", "--config", str(cfg)], {})
    assert result.exit_code == 0, result.output
    assert reg.get("champion") == "v0001"
