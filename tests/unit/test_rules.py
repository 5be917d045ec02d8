"""The five rule sections: the shipped loopwright.toml writes every key with its dataclass
default, and every range check names `[section] key = value` (directly and via load_config)."""

from __future__ import annotations

import doctest
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

import curation.drift_rules
import curation.rules
import retrain.trigger_rules
from curation.drift_rules import DriftRules
from curation.rules import CurationRules
from evaluation.estimate import EstimateRules
from evaluation.gate import GateRules
from evaluation.rollout import RolloutRules
from flows.config import Config, ConfigError, load_config
from flows.serving.settings import ServingConfig
from retrain.rules import RetrainRules
from retrain.trigger_rules import TriggerRules

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {
    "drift": DriftRules,
    "curation": CurationRules,
    "trigger": TriggerRules,
    "retrain": RetrainRules,
    "gate": GateRules,
    "rollout": RolloutRules,
    "serving": ServingConfig,
    "estimate": EstimateRules,
}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_shipped_toml_writes_every_key_with_its_default(section):
    shipped = tomllib.loads((REPO / "loopwright.toml").read_text())[section]
    cls = SECTIONS[section]
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
    assert set(shipped) == set(defaults)  # no key missing from the file, none unknown
    assert shipped == defaults
    assert getattr(Config(), section) == cls()  # the config's section IS the dataclass


def test_the_review_points_defaults():
    r = RetrainRules()
    assert (r.fit_samples, r.recent_weight, r.threads) == (6000, 3.0, 1)
    t = TriggerRules()
    assert (t.on_performance, t.on_confidence, t.on_drift) == (True, True, True)
    assert (GateRules().enabled, GateRules().recent_rows, GateRules().alpha) == (True, 200, 0.1)
    assert (r.split_group, r.audit_to_eval) == ("", True)
    assert CurationRules(budget_per_batch=0).budget_per_batch == 0  # 0 = ask for no labels


BAD = [
    ("curation", "strategy", "vibes", "[curation] strategy = 'vibes' is not one of"),
    ("curation", "budget_per_batch", -1, "[curation] budget_per_batch = -1"),
    ("curation", "window_rows", 0, "[curation] window_rows = 0"),
    ("curation", "audit_share", 1.5, "[curation] audit_share = 1.5 must lie between 0 and 1"),
    ("curation", "audit_share", -0.1, "[curation] audit_share = -0.1"),
    ("drift", "html_report", "sometimes", "[drift] html_report = 'sometimes' is not one of"),
    ("drift", "stattest", "ks", "[drift] stattest = 'ks' is not one of"),
    ("drift", "reference", "yesterday", "[drift] reference = 'yesterday' is not one of"),
    ("drift", "numeric_threshold", -0.1, "[drift] numeric_threshold = -0.1 must not be negative"),
    ("drift", "report_columns", -1, "[drift] report_columns = -1 must not be negative"),
    ("drift", "reference_rows", 0, "[drift] reference_rows = 0 must be at least 1"),
    ("drift", "window_rows", 0, "[drift] window_rows = 0 must be at least 1"),
    ("drift", "rescore_rows", 0, "[drift] rescore_rows = 0 must be at least 1"),
    ("drift", "report_sample_rows", 0, "[drift] report_sample_rows = 0 must be at least 1"),
    ("drift", "drift_share", 1.5, "[drift] drift_share = 1.5 must lie between 0 and 1"),
    ("drift", "p_value", 0.0, "[drift] p_value = 0.0 must lie between 0 and 1"),
    ("drift", "p_value", 1.0, "[drift] p_value = 1.0 must lie between 0 and 1"),
    ("drift", "rescore_rows", 100, "[drift] report_sample_rows = 2000 exceeds rescore_rows = 100"),
    ("drift", "reference_start", "soon", "[drift] reference_start = 'soon' is not an ISO time"),
    ("drift", "reference_start", "2026-05-01", "[drift] reference_start = '2026-05-01' without"),
    ("trigger", "accuracy_threshold", 0.0, "[trigger] accuracy_threshold = 0.0 must lie in (0, 1]"),
    ("trigger", "accuracy_threshold", 1.2, "[trigger] accuracy_threshold = 1.2"),
    ("trigger", "min_labels", 0, "[trigger] min_labels = 0"),
    ("trigger", "window_labels", -1, "[trigger] window_labels = -1 must be a number >= 0"),
    ("trigger", "confidence_drop", -0.1, "[trigger] confidence_drop = -0.1"),
    ("trigger", "every_rows", -5, "[trigger] every_rows = -5"),
    ("trigger", "recovery_drop", 1.5, "[trigger] recovery_drop = 1.5 must lie between 0 and 1"),
    ("retrain", "dataset_policy", "some", "[retrain] dataset_policy = 'some' is not one of"),
    ("retrain", "mode", "warm", "[retrain] mode = 'warm' is not one of"),
    ("retrain", "max_epochs", -1, "[retrain] max_epochs = -1 must be a number >= 0"),
    ("retrain", "learning_rate", -0.1, "[retrain] learning_rate = -0.1"),
    ("retrain", "fit_samples", -1, "[retrain] fit_samples = -1"),
    ("retrain", "batch_size", 0, "[retrain] batch_size = 0: use 1 or more"),
    ("retrain", "threads", 0, "[retrain] threads = 0: use 1 or more"),
    ("retrain", "recent_weight", 0.5, "[retrain] recent_weight = 0.5 is below 1"),
    ("gate", "alpha", 1.0, "[gate] alpha = 1.0: use a level in (0, 1)"),
    ("gate", "slice_tolerance", -0.1, "[gate] slice_tolerance = -0.1"),
    ("gate", "forget_tolerance", 2.0, "[gate] forget_tolerance = 2.0"),
    ("gate", "min_eval_rows", 0, "[gate] min_eval_rows = 0: use a whole number of rows >= 1"),
    ("gate", "min_slice_rows", 0, "[gate] min_slice_rows = 0"),
    ("gate", "min_recent_rows", 0, "[gate] min_recent_rows = 0"),
    ("gate", "recent_rows", -1, "[gate] recent_rows = -1: use a whole number of rows >= 0"),
    ("rollout", "mode", "blue-green", "[rollout] mode = 'blue-green' is not one of"),
    ("rollout", "steps", [5, 50], "[rollout] steps = [5"),
    ("rollout", "min_labels", 0, "[rollout] min_labels = 0 must be a whole number >= 1"),
    ("rollout", "alpha", 0.7, "[rollout] alpha = 0.7 must lie in (0, 0.5)"),
    ("rollout", "max_p99_ratio", 0.5, "[rollout] max_p99_ratio = 0.5 must be >= 1"),
    ("rollout", "ab_split", 0, "[rollout] ab_split = 0"),
]


@pytest.mark.parametrize(("section", "key", "value", "needle"), BAD)
def test_every_range_check_names_the_key(section, key, value, needle):
    with pytest.raises(ValueError) as exc:
        SECTIONS[section](**{key: value})
    assert needle in str(exc.value)


@pytest.mark.parametrize(("section", "key", "value", "needle"), BAD)
def test_load_config_says_where_the_bad_value_came_from(tmp_path, section, key, value, needle):
    text = f"[{section}]\n{key} = {value!r}\n".replace("'", '"')
    path = tmp_path / "lw.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert needle in str(exc.value) and str(exc.value).endswith(f"(from {path})")
    path.write_text("")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={}, overrides={f"{section}.{key}": value})
    assert needle in str(exc.value)
    assert str(exc.value).endswith(f"(from override {section}.{key})")


@pytest.mark.parametrize(
    ("section", "values", "needle"),
    [
        ("drift", {"reference_end": "later"}, "[drift] reference_end = 'later' is not an ISO time"),
        (
            "drift",
            {"reference_start": "2026-05-08", "reference_end": "2026-05-01"},
            "[drift] reference_start = '2026-05-08' is not before reference_end = '2026-05-01'",
        ),
        ("trigger", {"on_drift": "yes"}, "[trigger] on_drift = 'yes': use true or false"),
        ("trigger", {"on_performance": 1}, "[trigger] on_performance = 1: use true or false"),
        ("trigger", {"min_labels": 2.5}, "[trigger] min_labels = 2.5: use a whole number"),
        ("retrain", {"max_epochs": 2.5}, "[retrain] max_epochs = 2.5: use a whole number"),
        ("retrain", {"seed_rows": True}, "[retrain] seed_rows = True must be a number >= 0"),
        ("curation", {"budget_per_batch": 2.5}, "[curation] budget_per_batch = 2.5"),
        ("gate", {"require_expectations": None}, "[gate] require_expectations = None"),
        ("gate", {"alpha": "0.1"}, "[gate] alpha = '0.1': use a number"),
        ("retrain", {"audit_to_eval": "yes"}, "[retrain] audit_to_eval = 'yes': use true or false"),
        ("gate", {"min_eval_rows": 2.5}, "[gate] min_eval_rows = 2.5: use a whole number"),
    ],
)
def test_checks_of_values_a_file_cannot_hold(section, values, needle):
    """Values that only Python code can pass (a file's are typed by `coerce` first)."""
    with pytest.raises(ValueError) as exc:
        SECTIONS[section](**values)
    assert needle in str(exc.value)


def test_a_two_key_check_names_both_origins(tmp_path):
    path = tmp_path / "lw.toml"
    path.write_text('[drift]\nreference_start = "2026-05-08"\n')
    env = {"LOOPWRIGHT_DRIFT__REFERENCE_END": "2026-05-01"}
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env)
    assert str(exc.value).endswith(f"(from {path}, environment LOOPWRIGHT_DRIFT__REFERENCE_END)")


def test_environment_origin_is_named(tmp_path):
    path = tmp_path / "lw.toml"
    path.write_text("")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={"LOOPWRIGHT_GATE__ALPHA": "9"})
    assert str(exc.value) == (
        "[gate] alpha = 9.0: use a level in (0, 1), e.g. 0.05 "
        "(from environment LOOPWRIGHT_GATE__ALPHA)"
    )


def test_audit_count():
    cases = [(0, 0.2, 0), (1, 0.2, 0), (2, 0.2, 1), (5, 0.2, 1), (5, 0.5, 2), (6, 0.5, 3)]
    cases += [(20, 0.2, 4), (4, 1.0, 4), (4, 0.0, 0)]
    for budget, share, n_audit in cases:
        assert CurationRules(audit_share=share).audit_count(budget) == n_audit, (budget, share)


def test_doctests():
    for module in (curation.rules, curation.drift_rules, retrain.trigger_rules):
        assert doctest.testmod(module).failed == 0, module.__name__
