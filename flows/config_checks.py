"""Checks of the config values that belong to no package: types coerced from TOML or the
environment, the Label Studio URL, ranges of the driver sections ([labelstudio], [labeling],
[storage], ...). The loop's rules check themselves (`__post_init__` of `DriftRules`,
`CurationRules`, `TriggerRules`, `RetrainRules`, `GateRules`). Every error names the key (and
where it came from) and the fix."""

from __future__ import annotations

import typing
from dataclasses import fields
from datetime import date
from typing import Any
from urllib.parse import urlparse


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and the fix."""


_UNIT_INTERVAL = {("labeling", "error_rate")}


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
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[0] is float:
        return numbers(where, value)
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


def numbers(where: str, value: Any) -> tuple[float, ...]:
    """A list of numbers: a TOML array, or comma-separated text (environment)."""
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",")] if value.strip() else []
        except ValueError:
            value = None
    ok = isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if not ok:
        raise ConfigError(
            f"{where} must be a list of numbers, e.g. [5, 25, 50, 100] (in the environment: "
            f"5,25,50,100), got {value!r}"
        )
    return tuple(float(v) for v in value)


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


def check_driver_section(section: str, values: Any) -> None:
    """Ranges of a section no package owns (`values` is its dataclass): no negative numbers,
    shares within [0, 1], a valid Label Studio URL, `[storage]`'s own rules."""
    for f in fields(values):
        value = getattr(values, f.name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{section}.{f.name} = {value!r} must not be negative")
        if (section, f.name) in _UNIT_INTERVAL and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{section}.{f.name} = {value!r} must lie between 0 and 1")
    if section == "labelstudio":
        check_url(values.url)
    problems = getattr(values, "problems", None)  # [storage]: StorageSettings.problems()
    for problem in problems() if problems is not None else ():
        raise ConfigError(problem)
