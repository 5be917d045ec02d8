"""One typed config for the whole loop, read from `loopwright.toml` with `LOOPWRIGHT_*` overrides.

Why one object: every flow, the CLI and the benchmark read the same thresholds, so a value
changed in the file changes it everywhere. Unknown keys are errors (a typo in a threshold
must not silently fall back to a default). Secrets come from the environment only and are
wrapped in `Secret`, whose repr never shows the value.

Environment overrides: `LOOPWRIGHT_<SECTION>__<KEY>=value`, e.g.
`LOOPWRIGHT_DRIFT__WINDOW_ROWS=500`; `LOOPWRIGHT_HOME` sets `home.path`;
`LOOPWRIGHT_LABELSTUDIO_TOKEN` (or `LABEL_STUDIO_API_KEY`) gives the Label Studio token.
`load_config(overrides={"curation.strategy": "random"})` applies last (a benchmark policy).

The loop's sections are the packages' rules (`[gate]` is `evaluation.gate.GateRules`, ...):
their defaults and range checks live there, once; this module reads the file and the
environment, keeps unknown keys errors, and hands each package its section.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from curation.cohorts import Cohort, parse_cohorts
from curation.drift_rules import DriftRules
from curation.rules import CurationRules
from evaluation.estimate import EstimateRules
from evaluation.gate import GateRules
from evaluation.rollout import RolloutRules
from flows.config_checks import ConfigError, check_driver_section, coerce
from flows.serving.settings import ServingConfig
from retrain.label_shift import LabelShiftRules
from retrain.rules import RetrainRules
from retrain.trigger_rules import TriggerRules
from storage.settings import StorageSettings


class Secret:
    """A string that never shows itself in repr(), str(), logs or reports."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class HomeConfig:
    path: str = ".loopwright"


@dataclass(frozen=True)
class TaskConfig:
    plugin: str = "retrain.digits.task:TASK"
    # a model served elsewhere, watched only: its class names, in its probs order (when set
    # with the default or an empty plugin, the task is monitor-only: no model, no retraining)
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelStudioConfig:
    url: str = "http://127.0.0.1:8089"
    project_title: str = "loopwright-digits"
    username: str = "admin@loopwright.local"
    timeout_s: float = 30.0
    retries: int = 3
    token: Secret = field(default_factory=lambda: Secret(""))


@dataclass(frozen=True)
class PrefectConfig:
    port: int = 4200


@dataclass(frozen=True)
class LabelingConfig:
    """The simulated annotator (demo and tests only)."""

    error_rate: float = 0.02
    annotator: str = "sim-annotator@loopwright.local"


@dataclass(frozen=True)
class ScheduleConfig:
    drift_check_cron: str = "0 * * * *"
    curate_cron: str = "15 * * * *"
    trigger_check_cron: str = "45 * * * *"
    sync_labels_interval_s: int = 300
    retrain_cron: str = "30 2 * * *"
    compact_cron: str = "50 * * * *"  # `compact`: merge the logs' small parts
    rollout_cron: str = "*/5 * * * *"  # `rollout`: one step of the active rollout ("" = none)


# `[storage]` (DuckDB memory limit and threads of the log's readers, compaction): storage owns
# these rules, so the section is its dataclass (`storage/settings.py`). Likewise the loop's
# rules: `[drift]` is `curation.drift_rules.DriftRules`, `[curation]`
# `curation.rules.CurationRules`, `[trigger]` `retrain.trigger_rules.TriggerRules`,
# `[retrain]` `retrain.rules.RetrainRules`, `[gate]` `evaluation.gate.GateRules`: each
# package checks its own values (`__post_init__`); this module reads and routes them.
StorageConfig = StorageSettings


@dataclass(frozen=True)
class DemoConfig:
    scenario: str = "scenarios/demo-rotation.toml"
    holdout_rows: int = 500
    # share of the simulated users who send the true class back (POST /v1/feedback; the
    # benchmark in process: the same requests, `flows.loop.feedback`)
    feedback_share: float = 0.3
    # true: the demo runs with `[rollout] enabled = true` (every promotion through the
    # rollout's steps), whatever `[rollout] enabled` says for the loop in general
    rollout: bool = True
    # the demo's rollout, sized for its traffic (200-row batches, 30 % feedback): one judged
    # step at 25 % (50 canary rows, ~15 labels a batch), then 100 %. `[rollout]` keeps the
    # built-in 5 -> 25 -> 50 -> 100 with 20 labels and 100 predictions per arm, which the
    # demo's 10 batches could not walk through (`demo_environment` hands these to the stages)
    rollout_steps: tuple[float, ...] = (25.0, 100.0)
    rollout_min_labels: int = 10
    rollout_min_predictions: int = 40

    def __post_init__(self) -> None:
        if not isinstance(self.rollout, bool):
            raise ValueError(f"[demo] rollout = {self.rollout!r}: use true or false")
        try:  # the same checks as [rollout]'s, named after the [demo] keys
            RolloutRules(steps=self.rollout_steps, min_labels=self.rollout_min_labels,
                         min_predictions=self.rollout_min_predictions)  # fmt: skip
        except ValueError as exc:
            raise ValueError(
                str(exc)
                .replace("[rollout] steps", "[demo] rollout_steps")
                .replace("[rollout] min_labels", "[demo] rollout_min_labels")
                .replace("[rollout] min_predictions", "[demo] rollout_min_predictions")
            ) from None
        share = self.feedback_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"[demo] feedback_share = {share!r}: use a share in [0, 1], e.g. 0.3")


@dataclass(frozen=True)
class Config:
    home: HomeConfig = field(default_factory=HomeConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    labelstudio: LabelStudioConfig = field(default_factory=LabelStudioConfig)
    prefect: PrefectConfig = field(default_factory=PrefectConfig)
    drift: DriftRules = field(default_factory=DriftRules)
    curation: CurationRules = field(default_factory=CurationRules)
    labeling: LabelingConfig = field(default_factory=LabelingConfig)
    trigger: TriggerRules = field(default_factory=TriggerRules)
    retrain: RetrainRules = field(default_factory=RetrainRules)
    gate: GateRules = field(default_factory=GateRules)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    rollout: RolloutRules = field(default_factory=RolloutRules)
    serving: ServingConfig = field(default_factory=ServingConfig)  # `loopwright serve-model`
    estimate: EstimateRules = field(default_factory=EstimateRules)  # label-free estimate
    label_shift: LabelShiftRules = field(default_factory=LabelShiftRules)  # prior correction
    # `[[cohort]]` tables (curation.cohorts): named predicates over the prediction log
    cohorts: tuple[Cohort, ...] = ()

    @property
    def home_path(self) -> Path:
        return Path(self.home.path)


_SECRET_KEYS = {("labelstudio", "token")}


def load_config(
    path: str | Path | None = None,
    env: typing.Mapping[str, str] | None = None,
    overrides: typing.Mapping[str, object] | None = None,
) -> Config:
    """Read `path` (default `./loopwright.toml` if it exists, else built-in defaults), then
    `env`, then `overrides` ({"curation.strategy": "random"}: values typed as in TOML, what a
    benchmark policy changes), each over the one before. An unknown section or key, a value of
    the wrong type or out of range, is a `ConfigError` naming it, where it came from and the fix.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    origin = "defaults"
    if path is None and Path("loopwright.toml").is_file():
        path = "loopwright.toml"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                f"config file {str(p)!r} does not exist: pass --config PATH to an existing file"
            )
        try:
            raw = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
        origin = str(p)

    sections = {f.name: f for f in fields(Config) if f.name != "cohorts"}
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    try:  # `[[cohort]]`: an array of tables, read (and its predicates run) by curation.cohorts
        cohorts = parse_cohorts(raw.pop("cohort", None))
    except ValueError as exc:
        raise ConfigError(f"{exc} (from {origin})") from None
    for section, body in raw.items():
        _known_section(section, sections, f"unknown section [{section}] in {origin}", "[{}]")
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}] in {origin} must be a table")
        for key, value in body.items():
            values[section][key] = (value, origin)

    for name, value in env.items():
        if not name.startswith("LOOPWRIGHT_") or "__" not in name:
            continue
        section, _, key = name[len("LOOPWRIGHT_") :].partition("__")
        section, key = section.lower(), key.lower()
        _known_section(
            section,
            sections,
            f"unknown section {section!r} in environment variable {name}",
            "LOOPWRIGHT_{}__" + key.upper(),
            upper=True,
        )
        values[section][key] = (value, f"environment {name}")
    if "LOOPWRIGHT_HOME" in env:
        values["home"]["path"] = (env["LOOPWRIGHT_HOME"], "environment LOOPWRIGHT_HOME")

    for dotted, value in (overrides or {}).items():
        section, dot, key = str(dotted).partition(".")
        if not dot or not key:
            raise ConfigError(
                f"override {dotted!r} names no key: write it as 'section.key', e.g. "
                "'curation.strategy'"
            )
        _known_section(
            section, sections, f"unknown section {section!r} in override {dotted!r}", "{}"
        )
        values[section][key] = (value, f"override {dotted}")

    built: dict[str, Any] = {}
    for section, sec_field in sections.items():
        cls = sec_field.default_factory  # type: ignore[misc]
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, (value, src) in values[section].items():
            if key not in known or (section, key) in _SECRET_KEYS:
                if (section, key) in _SECRET_KEYS:
                    raise ConfigError(
                        f"{section}.{key} may not be written in a config file ({src}): "
                        "set LOOPWRIGHT_LABELSTUDIO_TOKEN in the environment instead"
                    )
                keys = sorted(known - {"token"})
                near = difflib.get_close_matches(key, keys, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ConfigError(
                    f"unknown key {section}.{key} in {src}: {hint}known keys are {keys}"
                )
            kwargs[key] = coerce(section, key, hints[key], value, src)
        if section == "labelstudio":
            token = env.get("LOOPWRIGHT_LABELSTUDIO_TOKEN") or env.get("LABEL_STUDIO_API_KEY") or ""
            kwargs["token"] = Secret(token)
        try:
            built[section] = cls(**kwargs)
            if section not in _RULE_SECTIONS:
                check_driver_section(section, built[section])
        except ValueError as exc:  # a rule's own range check, or a driver section's
            where = _origins(str(exc), values[section])
            raise ConfigError(f"{exc} (from {where})") from None
    return Config(**built, cohorts=cohorts)


#: sections whose dataclass checks itself (a package's rules)
_RULE_SECTIONS = {"drift", "curation", "trigger", "retrain", "gate", "rollout"}
_RULE_SECTIONS.add("serving")  # flows.serving.settings.ServingConfig checks itself
_RULE_SECTIONS.add("label_shift")  # retrain.label_shift.LabelShiftRules


def _known_section(
    section: str, sections: typing.Collection[str], problem: str, spell: str, upper: bool = False
) -> None:
    """Raise the unknown-section error with its 'did you mean' (spelled as the source writes it)."""
    if section in sections:
        return
    near = difflib.get_close_matches(section, sorted(sections), n=1)
    hint = f"did you mean {spell.format(near[0].upper() if upper else near[0])}? " if near else ""
    raise ConfigError(f"{problem}: {hint}known sections are {sorted(sections)}")


def _origins(message: str, given: dict[str, tuple[Any, str]]) -> str:
    """Where the keys a message names were set ("defaults" if none of them was)."""
    named = [src for key, (_, src) in given.items() if re.search(rf"\b{re.escape(key)}\b", message)]
    return ", ".join(dict.fromkeys(named)) or "defaults"


def to_dict(cfg: Config) -> dict[str, Any]:
    """A printable view of the config, secrets masked."""
    out = dataclasses.asdict(cfg)
    out["labelstudio"]["token"] = "***" if cfg.labelstudio.token else ""
    return out


__all__ = ["Config", "ConfigError", "Secret", "load_config", "to_dict"]
