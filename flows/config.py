"""One typed config for the whole loop, read from `loopwright.toml` with `LOOPWRIGHT_*` overrides.

Why one object: every flow, the CLI and the benchmark read the same thresholds, so a value
changed in the file changes it everywhere. Unknown keys are errors (a typo in a threshold
must not silently fall back to a default). Secrets come from the environment only and are
wrapped in `Secret`, whose repr never shows the value.

Environment overrides: `LOOPWRIGHT_<SECTION>__<KEY>=value`, e.g.
`LOOPWRIGHT_DRIFT__WINDOW_ROWS=500`; `LOOPWRIGHT_HOME` sets `home.path`;
`LOOPWRIGHT_LABELSTUDIO_TOKEN` (or `LABEL_STUDIO_API_KEY`) gives the Label Studio token.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flows.config_checks import ConfigError, check, coerce
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
class DriftConfig:
    reference_rows: int = 600  # seeded sample of the champion's training rows
    window_rows: int = 400  # latest champion-role predictions, streamed (any size)
    rescore_rows: int = 5000  # of the window, re-scored by the champion (pred, confidence)
    numeric_threshold: float = 0.1  # normed Wasserstein distance per feature
    categorical_threshold: float = 0.1  # Jensen-Shannon distance on the predicted class
    drift_share: float = 0.5  # dataset drift when this share of columns drift
    report_sample_rows: int = 2000  # rows handed to Evidently for the human report
    report_columns: int = 16  # most drifted features in the report (0 = all); ~0.09 s each
    html_report: str = "on_change"  # on_change | always | never
    stattest: str = "auto"  # auto (Evidently's: p-value tests at <= 1000 reference rows) | distance
    p_value: float = 0.05  # K-S / chi-square / z-test threshold under "auto"
    reference: str = "champion"  # champion (its training rows, re-scored) | window (of the log)
    reference_start: str = ""  # window: ISO time, first row of the reference (inclusive)
    reference_end: str = ""  # window: ISO time, end of the reference (exclusive)
    reference_model_version: str = ""  # window: only rows this model_version logged


@dataclass(frozen=True)
class CurationConfig:
    strategy: str = "margin"  # least_confidence | margin | entropy | random
    budget_per_batch: int = 20
    audit_share: float = 0.2
    window_rows: int = 2000  # candidates are drawn from the most recent rows


@dataclass(frozen=True)
class LabelingConfig:
    """The simulated annotator (demo and tests only)."""

    error_rate: float = 0.02
    annotator: str = "sim-annotator@loopwright.local"


@dataclass(frozen=True)
class TriggerConfig:
    accuracy_threshold: float = 0.85
    min_labels: int = 20
    window_labels: int = 60  # audit labels of the most recent rows used for the estimate
    on_drift: bool = True
    confidence_drop: float = 0.1  # label-free: mean confidence below reference by this much
    every_rows: int = 0  # retrain after the champion served this many predictions; 0 disables
    recovery_drop: float = 0.05  # after a trigger, keep retraining until confidence is within this of pre-drift; 0 = off


@dataclass(frozen=True)
class RetrainConfig:
    dataset_policy: str = "all"  # all | window
    window_rows: int = 2000
    mode: str = "finetune"  # scratch | finetune
    max_epochs: int = 40  # training from scratch
    finetune_epochs: int = 15  # fine-tuning from the champion's weights
    batch_size: int = 64
    learning_rate: float = 0.003
    seed: int = 0
    seed_rows: int = 600  # clean labeled rows the first champion is trained on
    split_group: str = ""  # attr the dataset split groups by; "" = the request id
    fit_samples: int = 0  # fine-tune epochs = clamp(fit_samples / train rows, 1, finetune_epochs); 0 = finetune_epochs
    recent_rows: int = (
        200  # the newest labeled rows, drawn recent_weight times as often in training
    )
    recent_weight: float = 1.0  # 1 = every row equally


@dataclass(frozen=True)
class GateConfig:
    tolerance: float = 0.005  # challenger may not be worse overall by more than this
    slice_tolerance: float = 0.05
    min_slice_rows: int = 20
    min_eval_rows: int = 50
    recent_rows: int = 0  # newest eval rows that stand for today's traffic (0 = off)
    min_recent_rows: int = 20
    forget_tolerance: float = 0.02  # the whole eval set may lose this much when recent rows decide
    min_gain_z: float = 0.0  # paired check: (won - lost) / sqrt(won + lost) at least this


@dataclass(frozen=True)
class ScheduleConfig:
    drift_check_cron: str = "0 * * * *"
    curate_cron: str = "15 * * * *"
    trigger_check_cron: str = "45 * * * *"
    sync_labels_interval_s: int = 300
    retrain_cron: str = "30 2 * * *"
    compact_cron: str = "50 * * * *"  # `compact`: merge the logs' small parts


# `[storage]` (DuckDB memory limit and threads of the log's readers, compaction): storage owns
# these rules, so the section is its dataclass (`storage/settings.py`).
StorageConfig = StorageSettings


@dataclass(frozen=True)
class DemoConfig:
    scenario: str = "scenarios/demo-rotation.toml"
    batches_per_round: int = 1
    holdout_rows: int = 500


@dataclass(frozen=True)
class Config:
    home: HomeConfig = field(default_factory=HomeConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    labelstudio: LabelStudioConfig = field(default_factory=LabelStudioConfig)
    prefect: PrefectConfig = field(default_factory=PrefectConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    curation: CurationConfig = field(default_factory=CurationConfig)
    labeling: LabelingConfig = field(default_factory=LabelingConfig)
    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)

    @property
    def home_path(self) -> Path:
        return Path(self.home.path)


_SECRET_KEYS = {("labelstudio", "token")}


def load_config(
    path: str | Path | None = None, env: typing.Mapping[str, str] | None = None
) -> Config:
    """Read `path` (default `./loopwright.toml` if it exists, else built-in defaults), then env."""
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

    sections = {f.name: f for f in fields(Config)}
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for section, body in raw.items():
        if section not in sections:
            near = difflib.get_close_matches(section, sorted(sections), n=1)
            hint = f"did you mean [{near[0]}]? " if near else ""
            raise ConfigError(
                f"unknown section [{section}] in {origin}: {hint}known sections are {sorted(sections)}"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}] in {origin} must be a table")
        for key, value in body.items():
            values[section][key] = (value, origin)

    for name, value in env.items():
        if not name.startswith("LOOPWRIGHT_") or "__" not in name:
            continue
        section, _, key = name[len("LOOPWRIGHT_") :].partition("__")
        section, key = section.lower(), key.lower()
        if section not in sections:
            near = difflib.get_close_matches(section, sorted(sections), n=1)
            hint = f"did you mean LOOPWRIGHT_{near[0].upper()}__{key.upper()}? " if near else ""
            raise ConfigError(
                f"unknown section {section!r} in environment variable {name}: {hint}"
                f"sections are {sorted(sections)}"
            )
        values[section][key] = (value, f"environment {name}")
    if "LOOPWRIGHT_HOME" in env:
        values["home"]["path"] = (env["LOOPWRIGHT_HOME"], "environment LOOPWRIGHT_HOME")

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
        built[section] = cls(**kwargs)
    cfg = Config(**built)
    check(cfg)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    """A printable view of the config, secrets masked."""
    out = dataclasses.asdict(cfg)
    out["labelstudio"]["token"] = "***" if cfg.labelstudio.token else ""
    return out


__all__ = ["Config", "ConfigError", "Secret", "load_config", "to_dict"]
