"""What a new user hit (issue #8.5), each case as they met it: values quietly accepted or
dropped, and messages that pointed the wrong way. Real files on disk, no servers."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli_ops import status_table
from flows.config import ConfigError, load_config
from storage.batch_checks import validate_batch
from storage.home import StorageError
from tests.support import write_config
from tests.wine_task import CLASSES, N_FEATURES, wine_rows

# -- config: a quoted number in a TOML file is a string ---------------------------------------


def test_a_quoted_number_in_the_file_is_an_error_naming_the_fix(tmp_path):
    cfg = write_config(tmp_path / "lw.toml", tmp_path / "h", retrain={"max_epochs": "40"})
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    message = str(err.value)
    assert "retrain.max_epochs" in message and "got the string '40'" in message
    assert "write it without quotes (max_epochs = 40)" in message


def test_quoted_bool_and_float_in_the_file_are_errors(tmp_path):
    cfg = write_config(tmp_path / "a.toml", tmp_path / "h", trigger={"on_drift": "false"})
    with pytest.raises(ConfigError, match="trigger.on_drift .* got the string 'false'"):
        load_config(cfg, env={})
    cfg = write_config(tmp_path / "b.toml", tmp_path / "h", gate={"slice_tolerance": "0.01"})
    with pytest.raises(ConfigError, match=r"gate.slice_tolerance .* \(slice_tolerance = 0.01\)"):
        load_config(cfg, env={})


def test_the_environment_still_gives_numbers_as_text(tmp_path):
    cfg = write_config(tmp_path / "lw.toml", tmp_path / "h")
    env = {"LOOPWRIGHT_RETRAIN__MAX_EPOCHS": "7", "LOOPWRIGHT_TRIGGER__ON_DRIFT": "false"}
    loaded = load_config(cfg, env=env)
    assert loaded.retrain.max_epochs == 7 and loaded.trigger.on_drift is False


# -- status: a step that never ran says so -----------------------------------------------------


def _info(**over) -> dict:
    base = {
        "home": "/h",
        "champion": None,
        "challenger": None,
        "last_drift": None,
        "last_trigger": None,
        "last_gate": None,
        "pending_labels": 0,
        "labels": {},
        "predictions": 0,
        "next": None,
    }
    return {**base, **over}


def _rows(table) -> dict[str, str]:
    from rich.console import Console

    console = Console(width=300, record=True)
    console.print(table)
    text = console.export_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[0]:
            rows[cells[0]] = cells[1]
    return rows


def test_status_without_any_run_says_none_yet_not_keep():
    rows = _rows(status_table(_info()))
    assert rows["last gate"] == "no gate has run yet"
    assert rows["last trigger"] == "none yet" and rows["last drift check"] == "none yet"
    assert rows["champion"] == "none yet"
    assert "KEEP" not in " ".join(rows.values())


def test_status_of_a_first_model_not_promoted_says_so_and_what_next():
    gate = {"promote": False, "reasons": ["eval set 9 rows (minimum 50)"], "champion_before": None}
    rows = _rows(status_table(_info(last_gate=gate, challenger="v0001", next="promote it")))
    assert rows["last gate"].startswith("NOT PROMOTED (no champion yet): eval set 9 rows")
    assert rows["next step"] == "promote it"
    gate["champion_before"] = "v0001"
    assert _rows(status_table(_info(last_gate=gate)))["last gate"].startswith("KEEP champion")


# -- prediction rows: a features vector of another length ------------------------------------


def _external(n: int, n_features: int) -> pa.Table:
    probs = np.full((n, 3), 0.2)
    probs[:, 0] = 0.6
    return pa.table(
        {
            "request_id": pa.array([f"ext-{i}" for i in range(n)], pa.string()),
            "model_version": pa.array(["sk-1"] * n, pa.string()),
            "features": pa.array(np.ones((n, n_features)).tolist(), pa.list_(pa.float32())),
            "probs": pa.array(probs.tolist(), pa.list_(pa.float32())),
        }
    )


def test_validate_batch_refuses_features_of_another_length():
    from storage.prediction_log import complete_batch

    table = complete_batch(_external(4, 5), CLASSES)
    with pytest.raises(StorageError) as err:
        validate_batch(table, CLASSES, n_features=N_FEATURES)
    assert "features has 5 values per row, the task's vectors have 13" in str(err.value)
    assert validate_batch(complete_batch(_external(4, 13), CLASSES), CLASSES, 13).num_rows == 4


@pytest.fixture
def wine(tmp_path, monkeypatch):
    """A user's own 13-feature, 3-class task, its config and data home."""
    monkeypatch.delenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    cfg = write_config(
        tmp_path / "loopwright.toml",
        tmp_path / "home",
        task={"plugin": "tests.wine_task:TASK"},
        labelstudio={"url": "http://127.0.0.1:9", "retries": 0},
    )
    return cfg


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_log_predictions_refuses_5_features_for_a_13_feature_task(wine, tmp_path):
    path = tmp_path / "preds.parquet"
    pq.write_table(_external(4, 5), path)
    result = _invoke("log-predictions", "--input", str(path), "--config", str(wine))
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert "features has 5 values per row, the task's vectors have 13" in out
    assert not (tmp_path / "home" / "predictions").exists() or not list(
        (tmp_path / "home" / "predictions").rglob("*.parquet")
    )


def test_log_predictions_says_how_many_ids_were_already_logged(wine, tmp_path):
    first, again = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(_external(4, 13), first)
    pq.write_table(_external(6, 13), again)  # ext-0..3 again, then ext-4 and ext-5
    ok = _invoke("log-predictions", "--input", str(first), "--config", str(wine), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"rows": 4, "ignored": 0, "chunks": 1, "file": str(first)}
    second = _invoke("log-predictions", "--input", str(again), "--config", str(wine))
    out = " ".join(second.output.split())
    assert second.exit_code == 0, out
    assert "logged 2 predictions" in out
    assert "4 request ids were already in the prediction log and are ignored" in out
    from storage.home import DataHome
    from storage.queries import Queries

    assert Queries(DataHome(tmp_path / "home")).count_predictions() == 6
    parts = list((tmp_path / "home" / "predictions").rglob("*.parquet"))
    assert sum(pq.read_metadata(p).num_rows for p in parts) == 6  # nothing stored twice


# -- Label Studio: where the token came from, and the real URL override ---------------------


def test_local_token_is_named_as_the_source(wine, tmp_path, monkeypatch):
    from flows.loop.labeler import labelstudio_token

    (tmp_path / "ls").mkdir()
    (tmp_path / "ls" / "token").write_text("local-demo-token\n")
    monkeypatch.setenv("LS_DATA_DIR", str(tmp_path / "ls"))
    token, source = labelstudio_token(load_config(wine, env={}))
    assert token == "local-demo-token"
    assert (
        str(tmp_path / "ls" / "token") in source
        and "LOOPWRIGHT_LABELSTUDIO_TOKEN is not set" in source
    )
    monkeypatch.setenv("LOOPWRIGHT_LABELSTUDIO_TOKEN", "env-token")
    token, source = labelstudio_token(load_config(wine))
    assert (token, source) == ("env-token", "the environment (LOOPWRIGHT_LABELSTUDIO_TOKEN)")


def test_a_remote_server_never_gets_the_local_token(wine, tmp_path, monkeypatch):
    from flows.loop.labeler import labelstudio_token

    (tmp_path / "ls").mkdir()
    (tmp_path / "ls" / "token").write_text("local-demo-token\n")
    monkeypatch.setenv("LS_DATA_DIR", str(tmp_path / "ls"))
    remote = load_config(wine, env={"LOOPWRIGHT_LABELSTUDIO__URL": "https://ls.example.org"})
    with pytest.raises(RuntimeError) as err:
        labelstudio_token(remote)
    assert "no Label Studio token for https://ls.example.org" in str(err.value)
    assert "LOOPWRIGHT_LABELSTUDIO_TOKEN" in str(err.value)


def test_refused_token_names_its_source(monkeypatch):
    import httpx

    from curation.labelstudio import LabelStudioAdapter, LabelStudioError

    transport = httpx.MockTransport(lambda r: httpx.Response(401, json={"detail": "nope"}))
    real = httpx.Client

    monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=transport, **kw))
    adapter = LabelStudioAdapter(
        "http://127.0.0.1:9", "tok-123456", retries=0, token_source="/x/.labelstudio/token"
    )
    with pytest.raises(LabelStudioError) as err:
        adapter.check()
    message = str(err.value)
    assert "refused the token (401: nope) from /x/.labelstudio/token" in message
    assert "tok-123456" not in message


def test_unreachable_hint_names_the_real_override():
    from curation.labelstudio import LabelStudioAdapter, LabelStudioError

    adapter = LabelStudioAdapter("http://127.0.0.1:9", "tok", retries=0, backoff=(0,))
    with pytest.raises(LabelStudioError) as err:
        adapter.check()
    assert "LOOPWRIGHT_LABELSTUDIO__URL" in str(err.value)
    assert "LOOPWRIGHT_LABELSTUDIO_URL" not in str(err.value)


# -- the CLI's Prefect console: expected errors in one line ----------------------------------


def _record(msg: str, run: str, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc else None
    record = logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, msg, (), info)
    record.task_run_id = run
    return record


def test_expected_errors_lose_their_traceback_others_keep_it():
    from flows.cli_common import ExpectedFailureFilter

    quiet = ExpectedFailureFilter()
    no_labels = ValueError("no labeled examples to train on")
    assert not quiet.filter(_record("Task run failed with exception", "t1", no_labels))
    assert not quiet.filter(_record("Finished in state Failed('...ValueError...')", "t1"))
    assert quiet.filter(_record("trigger: FIRE (manual)", "t1"))  # the run's own lines stay
    bug = TypeError("unsupported operand")
    assert quiet.filter(_record("Task run failed with exception", "t2", bug))
    assert quiet.filter(_record("Finished in state Failed('...TypeError...')", "t2"))


def test_wine_rows_are_what_the_task_decodes():
    """The helper task the tests above use: 13 measurements in, 13 features out."""
    from tests.wine_task import TASK

    ids, inputs, labels = wine_rows(5)
    x = TASK.decode_inputs(inputs)
    assert x.shape == (5, 13) and TASK.features(x).shape == (5, 13)
    assert len(set(ids)) == 5 and set(labels) <= set(CLASSES)
    assert sys.modules["tests.wine_task"].N_FEATURES == 13
