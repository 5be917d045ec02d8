"""Benchmark policies are config overrides: each is valid config, a typo is an error."""

from __future__ import annotations

import pytest

from flows.bench_policies import (
    BENCH_OVERRIDES,
    Policy,
    default_policies,
    parse_policy,
    policy_config,
    select_policies,
)
from flows.config import load_config
from flows.config_checks import ConfigError


def test_default_set_is_todays_plus_configured():
    names = [p.name for p in default_policies(200, [0.05, 0.1], [1, 2, 4, 8])]
    assert names == [
        "configured",
        "static",
        "oracle",
        "periodic-random@10",
        "loop-uncertainty@10",
        "periodic-random@20",
        "loop-uncertainty@20",
        "loop-random@10",
        "loop-random@20",
        "loop-random@40",
        "loop-random@80",
        "loop-random@160",
    ]


def test_every_override_is_valid_config():
    base = load_config(None)
    for p in default_policies(50, [0.1], [1, 2]):
        cfg = policy_config(p)
        for key, value in {**BENCH_OVERRIDES, **p.overrides}.items():
            section, name = key.split(".")
            assert getattr(getattr(cfg, section), name) == value, (p.name, key)
    oracle = policy_config(parse_policy("oracle", 50))
    assert (oracle.curation.budget_per_batch, oracle.curation.window_rows) == (50, 50)
    assert oracle.curation.audit_share == 0 and not oracle.gate.enabled
    # every row of every batch: pacing (quiet batches ask for the audit share, 0 here) is off,
    # and so for the periodic yardstick's fixed budget
    assert oracle.curation.pace is False
    assert policy_config(parse_policy("periodic-random@5", 50)).curation.pace is False
    assert (oracle.trigger.on_performance, oracle.trigger.on_confidence) == (False, False)
    assert oracle.trigger.every_rows == 50 and oracle.trigger.recovery_drop == 0
    periodic = policy_config(parse_policy("periodic-random@5", 50))
    assert periodic.trigger.every_rows == 250 and periodic.curation.strategy == "random"
    static = policy_config(parse_policy("static", 50))
    assert static.curation.budget_per_batch == 0 and static.trigger.every_rows == 0
    # configured changes nothing the loop decides with
    configured = policy_config(parse_policy("configured", 50))
    assert configured.curation == base.curation and configured.trigger == base.trigger
    assert configured.gate == base.gate and configured.retrain == base.retrain


def test_configured_reads_the_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[curation]\nstrategy = 'entropy'\nbudget_per_batch = 7\n")
    cfg = policy_config(parse_policy("configured", 50), path)
    assert (cfg.curation.strategy, cfg.curation.budget_per_batch) == ("entropy", 7)
    # a policy's override wins over the file
    assert policy_config(parse_policy("loop-random@3", 50), path).curation.budget_per_batch == 3


def test_unknown_key_is_an_error_naming_the_policy():
    with pytest.raises(ConfigError, match=r"policy mine: unknown key curation\.strategyy"):
        policy_config(Policy("mine", None, {"curation.strategyy": "random"}))
    with pytest.raises(ConfigError, match="policy mine"):
        policy_config(Policy("mine", None, {"curation.budget_per_batch": -1}))


def test_names_parse_and_select():
    assert parse_policy("loop-uncertainty@7", 50).overrides == {
        "curation.budget_per_batch": 7,
        "demo.feedback_share": 0.0,
    }
    assert parse_policy("configured", 50).overrides == {}  # the demo's loop, feedback too
    for bad, why in (("loop-random", "needs a budget"), ("static@3", "takes no budget"),
                     ("greedy@3", "unknown")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            parse_policy(bad, 50)
    assert [p.name for p in select_policies(50, [0.1], [1, 2], ["configured"])] == ["configured"]
    picked = select_policies(50, [0.1], [1, 2], ["loop-random", "oracle", "loop-random@7"])
    assert [p.name for p in picked] == [
        "loop-random@5",
        "loop-random@10",
        "oracle",
        "loop-random@7",
    ]
    with pytest.raises(ValueError, match="unknown"):
        select_policies(50, [0.1], [1], ["periodic-random@5", "configured", "nothing"])
