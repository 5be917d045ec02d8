"""Checks of the config values: types coerced from TOML or the environment, choices, ranges,
the Label Studio URL. Every error names the key (and where it came from) and the fix."""

from __future__ import annotations

import typing
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from flows.config import Config


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and the fix."""


_CHOICES = {
    ("curation", "strategy"): {"least_confidence", "margin", "entropy", "random"},
    ("retrain", "dataset_policy"): {"all", "window"},
    ("retrain", "mode"): {"scratch", "finetune"},
    ("drift", "html_report"): {"on_change", "always", "never"},
    ("drift", "stattest"): {"auto", "distance"},
    ("drift", "reference"): {"champion", "window"},
}
# a zero here would make the step do nothing (or, for Evidently's sample, mean "every row")
_AT_LEAST_ONE = (
    ("curation", "budget_per_batch"),
    ("drift", "window_rows"),
    ("drift", "reference_rows"),
    ("drift", "rescore_rows"),
    ("drift", "report_sample_rows"),
)
_UNIT_INTERVAL = {
    ("curation", "audit_share"),
    ("labeling", "error_rate"),
    ("trigger", "accuracy_threshold"),
    ("drift", "drift_share"),
    ("trigger", "recovery_drop"),
    ("gate", "tolerance"),
    ("gate", "slice_tolerance"),
    ("gate", "forget_tolerance"),
}


def _from_environment(origin: str) -> bool:
    return origin.startswith("environment ")


def coerce(section: str, key: str, kind: Any, value: Any, origin: str) -> Any:
    """`value` as the key's type. Text is parsed only from the environment, where every value
    is text; in a TOML file `max_epochs = "40"` is a string and an error, so a quoted number
    is never taken for what it looks like."""
    where = f"{section}.{key} (from {origin})"
    if isinstance(kind, str):  # postponed annotations
        kind = {"str": str, "int": int, "float": float, "bool": bool}.get(kind, kind)
    quoted = isinstance(value, str) and not _from_environment(origin)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "1", "yes", "false", "0", "no"}:
            if quoted:
                raise ConfigError(
                    f"{where} must be true or false, got the string {value!r}: write {key} = "
                    "true or false, without quotes"
                )
            return value.lower() in {"true", "1", "yes"}
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind in (int, float):
        noun = "a whole number" if kind is int else "a number"
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ConfigError(f"{where} must be {noun}, got {value!r}")
        if isinstance(value, int | float):
            return kind(value)
        if isinstance(value, str):
            try:
                parsed = kind(value)
            except ValueError:
                parsed = None
            if parsed is not None and quoted:
                raise ConfigError(
                    f"{where} must be {noun}, got the string {value!r}: write it without "
                    f"quotes ({key} = {parsed!r})"
                )
            if parsed is not None:
                return parsed
        raise ConfigError(f"{where} must be {noun}, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, date):  # an unquoted TOML date-time, e.g. reference_start
            return value.isoformat()
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if typing.get_origin(kind) is tuple:
        return names(where, value)
    raise ConfigError(f"{where}: unsupported type {kind}")  # pragma: no cover


def names(where: str, value: Any) -> tuple[str, ...]:
    """A list of names: a TOML array of strings, or comma-separated text (environment)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")] if value.strip() else []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f'{where} must be a list of non-empty names, e.g. ["class_0", "class_1"] (in the '
            f"environment: class_0,class_1), got {value!r}"
        )
    return tuple(value)


def reference_times(drift) -> tuple[datetime | None, datetime | None]:
    """`[drift] reference_start` / `reference_end` as UTC times (None when empty); a time
    without a zone is UTC."""
    out = []
    for key in ("reference_start", "reference_end"):
        text = getattr(drift, key)
        if not text:
            out.append(None)
            continue
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"drift.{key} = {text!r} is not an ISO time: write it like "
                '"2026-05-01T00:00:00Z" or "2026-05-01"'
            ) from None
        out.append(t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC))
    return out[0], out[1]


def check_url(text: str) -> None:
    """An http(s) URL with a host and a valid port, and no credentials in it: the token has
    its own variable, and a URL is printed in messages."""
    url = urlparse(text)
    try:
        url.port  # noqa: B018 (raises on a port out of range or not a number)
    except ValueError:
        raise ConfigError(
            "labelstudio.url has an invalid port: write it like http://127.0.0.1:8089"
        ) from None
    if url.username is not None or url.password is not None:
        raise ConfigError(
            "labelstudio.url holds a user name or password: remove them from the URL and set "
            "LOOPWRIGHT_LABELSTUDIO_TOKEN in the environment instead"
        )
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise ConfigError(
            f"labelstudio.url = {text!r} is not an http(s) URL: write it like http://127.0.0.1:8089"
        )


def check(cfg: Config) -> None:
    for (section, key), allowed in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(
                f"{section}.{key} = {value!r} is not one of {sorted(allowed)}: pick one of them"
            )
    for section, key in _UNIT_INTERVAL:
        value = getattr(getattr(cfg, section), key)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{section}.{key} = {value!r} must lie between 0 and 1")
    for f in fields(cfg):
        sub = getattr(cfg, f.name)
        for sf in fields(sub):
            value = getattr(sub, sf.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{f.name}.{sf.name} = {value!r} must not be negative")
    check_url(cfg.labelstudio.url)
    for section, key in _AT_LEAST_ONE:
        if getattr(getattr(cfg, section), key) < 1:
            raise ConfigError(f"{section}.{key} must be at least 1")
    if cfg.retrain.recent_weight < 1:
        raise ConfigError(
            f"retrain.recent_weight = {cfg.retrain.recent_weight} is below 1: use 1 (every row "
            "equally) or more (newest rows drawn that many times as often)"
        )
    if cfg.gate.min_gain_z > 5:
        raise ConfigError(
            f"gate.min_gain_z = {cfg.gate.min_gain_z}: use a z score in [0, 5], e.g. 1.0"
        )
    drift = cfg.drift
    if not 0.0 < drift.p_value < 1.0:
        raise ConfigError(f"drift.p_value = {drift.p_value} must lie between 0 and 1, e.g. 0.05")
    start, end = reference_times(drift)
    if start and end and start >= end:
        raise ConfigError(
            f"drift.reference_start ({drift.reference_start}) is not before drift.reference_end "
            f"({drift.reference_end}): the reference window would be empty"
        )
    if start and not end:
        raise ConfigError(
            f"drift.reference_start = {drift.reference_start!r} without drift.reference_end: set "
            "the end of the reference window too (the current window starts there)"
        )
    if drift.report_sample_rows > drift.rescore_rows:
        raise ConfigError(
            f"drift.report_sample_rows = {drift.report_sample_rows} exceeds drift.rescore_rows = "
            f"{drift.rescore_rows}: the report samples the re-scored rows; lower "
            "report_sample_rows or raise rescore_rows"
        )
    for problem in cfg.storage.problems():
        raise ConfigError(problem)
