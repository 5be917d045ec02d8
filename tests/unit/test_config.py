"""The one typed config: defaults, file, environment, and errors that name the key."""

from __future__ import annotations

import pytest

from curation.rules import CurationRules
from evaluation.gate import GateRules
from flows.config import Config, ConfigError, Secret, load_config, to_dict


def write(tmp_path, text: str):
    p = tmp_path / "loopwright.toml"
    p.write_text(text)
    return p


def test_defaults_when_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg.home.path == ".loopwright"
    assert cfg.curation.audit_share == 0.2
    assert cfg.labelstudio.token == Secret("")


def test_repo_file_loads_and_matches_defaults():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(repo / "loopwright.toml", env={})
    assert cfg.curation.strategy == "margin"
    assert cfg.demo.scenario == "scenarios/demo-rotation.toml"
    assert cfg == Config()  # every section written with its defaults (see test_rules.py)


def test_file_values_and_env_overrides(tmp_path):
    p = write(tmp_path, "[drift]\nwindow_rows = 800\n[curation]\nstrategy = 'entropy'\n")
    cfg = load_config(p, env={"LOOPWRIGHT_DRIFT__WINDOW_ROWS": "900", "LOOPWRIGHT_HOME": "/tmp/h"})
    assert cfg.drift.window_rows == 900  # environment wins over the file
    assert cfg.curation.strategy == "entropy"
    assert cfg.home.path == "/tmp/h"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[drift]\nwindow_row = 3\n", {}, "unknown key drift.window_row"),
        ("[drfit]\nwindow_rows = 3\n", {}, "unknown section [drfit]"),
        ("[drift]\nwindow_rows = 'many'\n", {}, "drift.window_rows"),
        ("[trigger]\non_drift = 'perhaps'\n", {}, "must be true or false, got 'perhaps'"),
        ("[curation]\nstrategy = 'vibes'\n", {}, "[curation] strategy = 'vibes' is not one of"),
        (
            "[curation]\naudit_share = 1.5\n",
            {},
            "[curation] audit_share = 1.5 must lie between 0 and 1",
        ),
        ("[retrain]\nmax_epochs = -1\n", {}, "[retrain] max_epochs = -1 must be a number >= 0"),
        ("[labeling]\nerror_rate = 2.0\n", {}, "labeling.error_rate = 2.0 must lie between 0"),
        ("[demo]\nbatches_per_round = 2\n", {}, "unknown key demo.batches_per_round"),
        (
            "[labelstudio]\nurl = 'localhost:8089'\n",
            {},
            "labelstudio.url = 'localhost:8089' is not an http(s) URL",
        ),
        (
            "[labelstudio]\ntoken = 'abc'\n",
            {},
            "set LOOPWRIGHT_LABELSTUDIO_TOKEN in the environment",
        ),
        (
            "",
            {"LOOPWRIGHT_GATE__SLICE_TOLERANCE": "loose"},
            "gate.slice_tolerance (from environment LOOPWRIGHT_GATE__SLICE_TOLERANCE)",
        ),
        ("", {"LOOPWRIGHT_NOPE__X": "1"}, "unknown section 'nope'"),
        ("[drift\n", {}, "is not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, env, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env=env)
    assert needle in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist: pass --config PATH"):
        load_config(tmp_path / "nope.toml", env={})


def test_token_comes_from_env_and_never_shows(tmp_path):
    token = "tok-9f8e7d6c5b4a"
    cfg = load_config(write(tmp_path, ""), env={"LOOPWRIGHT_LABELSTUDIO_TOKEN": token})
    assert cfg.labelstudio.token.reveal() == token
    for text in (repr(cfg), str(cfg), repr(cfg.labelstudio), str(to_dict(cfg))):
        assert token not in text
    assert to_dict(cfg)["labelstudio"]["token"] == "***"


def test_drift_report_and_rescore_keys(tmp_path):
    cfg = load_config(write(tmp_path, ""), env={})
    assert (cfg.drift.html_report, cfg.drift.rescore_rows) == ("on_change", 5000)
    assert cfg.drift.report_sample_rows <= cfg.drift.rescore_rows
    text = "[drift]\nhtml_report = 'always'\nrescore_rows = 300\nreport_sample_rows = 300\n"
    cfg = load_config(write(tmp_path, text), env={"LOOPWRIGHT_DRIFT__HTML_REPORT": "never"})
    assert (cfg.drift.html_report, cfg.drift.rescore_rows) == ("never", 300)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("html_report = 'sometimes'", "[drift] html_report = 'sometimes' is not one of"),
        ("rescore_rows = 0", "[drift] rescore_rows = 0 must be at least 1"),
        ("window_rows = 0", "[drift] window_rows = 0 must be at least 1"),
        ("report_sample_rows = 0", "[drift] report_sample_rows = 0 must be at least 1"),
        (
            "rescore_rows = 100",
            "[drift] report_sample_rows = 2000 exceeds rescore_rows = 100",
        ),
        ("rescore_rows = 2.5", "drift.rescore_rows (from"),
    ],
)
def test_bad_drift_keys_name_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, f"[drift]\n{text}\n"), env={})
    assert needle in str(exc.value)


def test_sections_are_the_packages_rules():
    cfg = Config()
    assert isinstance(cfg.curation, CurationRules) and isinstance(cfg.gate, GateRules)
    assert to_dict(cfg)["gate"]["enabled"] is True


def test_overrides_apply_last_and_are_typed_as_in_toml(tmp_path):
    p = write(tmp_path, "[curation]\nstrategy = 'entropy'\nbudget_per_batch = 5\n")
    env = {"LOOPWRIGHT_CURATION__STRATEGY": "least_confidence"}
    overrides = {"curation.strategy": "random", "gate.enabled": False, "trigger.every_rows": 50}
    cfg = load_config(p, env=env, overrides=overrides)
    assert cfg.curation == CurationRules(strategy="random", budget_per_batch=5)
    assert cfg.gate.enabled is False and cfg.trigger.every_rows == 50
    assert load_config(p, env=env).curation.strategy == "least_confidence"  # none: env wins
    cfg = load_config(p, env={}, overrides={"curation.budget_per_batch": 0, "drift.drift_share": 1})
    assert cfg.curation.budget_per_batch == 0 and cfg.drift.drift_share == 1.0  # int -> float


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"curation.stratgy": "random"}, "unknown key curation.stratgy in override"),
        ({"curation.stratgy": "random"}, "did you mean 'strategy'?"),
        ({"curashion.strategy": "random"}, "unknown section 'curashion' in override"),
        ({"curashion.strategy": "random"}, "did you mean curation?"),
        ({"strategy": "random"}, "override 'strategy' names no key: write it as 'section.key'"),
        ({"gate.enabled": "false"}, "gate.enabled (from override gate.enabled) must be true or"),
        ({"retrain.max_epochs": "40"}, "got the string '40'"),
        ({"curation.budget_per_batch": -1}, "[curation] budget_per_batch = -1"),
        ({"labelstudio.token": "abc"}, "set LOOPWRIGHT_LABELSTUDIO_TOKEN in the environment"),
    ],
)
def test_bad_overrides_name_the_key(tmp_path, overrides, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, ""), env={}, overrides=overrides)
    assert needle in str(exc.value)
