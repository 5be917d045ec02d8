"""The serving API's bodies as pydantic models, and its 4xx bodies: every problem names the
field and the fix.

Why models built per task (`request_models`): the `input` field's schema at `/docs` is the
task's own JSON form (`Task.input_schema`), and the batch bound is `[serving]
max_instances`. Unknown fields are errors (`extra="forbid"`): a misspelt `routing_key`
silently ignored would send a user to the wrong arm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, create_model, field_validator

from storage.prediction_log import SHADOW_SUFFIX

MAX_ID_CHARS = 200
INSTANCE_FIELDS = ("request_id", "input", "attrs", "routing_key")
FEEDBACK_FIELDS = ("request_id", "label", "annotator")


class _Instance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="unique per prediction: the log's idempotency key, labels join on it",
    )
    input: Any = Field(description="the task's JSON form of one input")
    attrs: dict[StrictStr, StrictStr] | None = Field(
        None, description="slice attributes (device, cohort...), string to string"
    )
    routing_key: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="who the request is for (a user id): the same key always gets the same "
        "model during a rollout; default: request_id",
    )

    @field_validator("request_id")
    @classmethod
    def _not_a_shadow_id(cls, value: str) -> str:
        if value.endswith(SHADOW_SUFFIX) or not value.strip():
            raise ValueError(
                f"must be non-blank and not end in {SHADOW_SUFFIX!r} (the log keys shadow rows "
                "so): use another request id"
            )
        return value


class Prediction(BaseModel):
    request_id: str
    pred: str = Field(description="the predicted class")
    probs: list[float] = Field(description="class probabilities, in the task's class order")
    model_version: str
    role: str = Field(description="champion or canary: which arm answered")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(min_length=1, max_length=MAX_ID_CHARS)
    label: StrictStr = Field(min_length=1, description="the true class, one of the task's")
    annotator: StrictStr | None = Field(
        None, min_length=1, max_length=MAX_ID_CHARS, description="who said so (default: feedback)"
    )


def request_models(input_schema: Mapping[str, object] | None, max_instances: int):
    """(Instance, PredictRequest) models for a task's input form and a batch bound."""
    extra = dict(input_schema or {})
    description = str(extra.pop("description", "the task's JSON form of one input"))
    instance = create_model(
        "Instance",
        __base__=_Instance,
        input=(Any, Field(description=description, json_schema_extra=extra or None)),
    )
    request = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        instances=(
            list[instance],
            Field(min_length=1, max_length=max_instances, description="one or more inputs"),
        ),
    )
    return instance, request


# ------------------------------------------------------------------------ 4xx bodies
def field_name(loc: Sequence[object]) -> str:
    """("body", "instances", 3, "input") -> "instances[3].input"."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _fix(kind: str, field: str, ctx: Mapping[str, Any], max_instances: int, feedback: bool) -> str:
    last = field.rpartition(".")[2]
    if kind == "missing":
        return f"{field} is missing: add it (the request schema is at /docs)"
    if kind == "extra_forbidden":
        known = INSTANCE_FIELDS if "instances[" in field else ("instances",)
        if feedback:
            known = FEEDBACK_FIELDS
        return f"{field} is not a known field: remove it (known: {', '.join(known)})"
    if field == "instances" and kind == "too_long":
        return (
            f"instances has more than {max_instances} items: split the batch into requests of at "
            f"most {max_instances} ([serving] max_instances)"
        )
    if field == "instances" and kind == "too_short":
        return "instances is empty: send at least one instance"
    if ".attrs" in field or kind == "dict_type":
        return (
            f"{field} must be an object of strings to strings, e.g. "
            '{"device": "scanner-b"}: send numbers and flags as strings'
        )
    if kind in ("string_type", "string_too_short"):
        return f"{field} must be a non-empty string: send {last} as a JSON string"
    if kind == "string_too_long":
        return f"{field} is longer than {ctx.get('max_length')} characters: shorten it"
    if kind in ("json_invalid", "model_attributes_type", "model_type"):
        return (
            f"{field} is not a JSON object as /docs describes: send Content-Type application/json"
        )
    if kind == "list_type":
        return f"{field} must be a JSON list"
    return ""


def problems_from_pydantic(
    errors: Sequence[Mapping[str, Any]], max_instances: int, feedback: bool = False
) -> list[dict]:
    """FastAPI's validation errors -> [{field, loc, type, msg}] whose msg says the fix."""
    out = []
    for e in errors:
        loc = list(e.get("loc", ()))
        kind = str(e.get("type", ""))
        if kind == "json_invalid":
            loc = ["body"]  # FastAPI gives the byte offset as the location
        field = field_name(loc)
        msg = str(e.get("msg", "invalid"))
        if kind == "value_error":  # our own validators: "Value error, <text>"
            msg = msg.removeprefix("Value error, ")
            msg = f"{field} {msg}"
        else:
            msg = (
                _fix(kind, field, e.get("ctx") or {}, max_instances, feedback) or f"{field}: {msg}"
            )
        out.append({"field": field, "loc": loc, "type": kind, "msg": msg})
    return out


def problem(loc: Sequence[object], msg: str, kind: str = "value_error") -> dict:
    field = field_name(loc)
    return {"field": field, "loc": list(loc), "type": kind, "msg": f"{field} {msg}"}


def error_body(problems: Sequence[Mapping[str, Any]], limit: int = 20) -> dict:
    """{"error": first message (+ how many more), "detail": the first `limit` problems}."""
    first = problems[0]["msg"] if problems else "invalid request"
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return {"error": first + more, "detail": list(problems[:limit])}
