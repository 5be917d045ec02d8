"""The loop's Prefect events and the automations that react to them.

Why events: on a schedule alone, a drift seen at 10:00 waits for the next trigger check and
an annotation for the next sync tick. With events the loop reacts now: drift-check emits
`loopwright.drift.detected` when it sees drift, the webhook receiver (flows/webhook.py)
emits `loopwright.labels.annotated` for each Label Studio annotation, and one automation per
event runs a deployment (`retrain`, trigger-checked: the `[trigger]` rules still decide;
`sync-labels`). `[schedule]` stays the fallback: an event lost (server down, webhook not
registered) delays a stage to its next tick, it never skips it.

The automations are Prefect deployment triggers (`DeploymentEventTrigger`): Prefect owns
them through the deployment and replaces them on each `apply`, so `loopwright deploy` run
twice leaves one of each. Each matches its own data home's resource id only, so two loops
on one Prefect server never start each other's runs.

The event payloads and the trigger specs are pure (unit-tested); `emit` is the one call
that talks to Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DRIFT_DETECTED = "loopwright.drift.detected"
LABELS_ANNOTATED = "loopwright.labels.annotated"

#: Label Studio webhook actions that mean "an answer to sync" (created or corrected)
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED")

#: the drift verdict's numbers an event carries (the whole verdict is the state file's)
DRIFT_NUMBERS = (
    "drift_share",
    "n_drifted",
    "n_columns",
    "confidence_ref",
    "confidence_cur",
    "confidence_drop",
    "n_reference",
    "n_current",
    "rule",
)


@dataclass(frozen=True)
class LoopEvent:
    """An event as `prefect.events.emit_event` takes it."""

    event: str
    resource: dict[str, str]
    payload: dict[str, Any]


def home_resource_id(home: str) -> str:
    """The resource every event of one data home is about: automations match on it.

    >>> home_resource_id("/data/loop")
    'loopwright.home./data/loop'
    """
    if not home:
        raise ValueError("home is empty: pass the data home's absolute path or s3:// URL")
    return f"loopwright.home.{home}"


def home_key(root: object) -> str:
    """How a data home is named in events and automations: the absolute path (as the
    deployments' `home` parameter pins it), or the URL of a home on object storage."""
    text = str(root)
    if "://" in text:
        return text
    from pathlib import Path

    return str(Path(text).resolve())


def _resource(home: str) -> dict[str, str]:
    return {"prefect.resource.id": home_resource_id(home), "prefect.resource.name": home}


def drift_event(verdict: Mapping[str, Any], home: str) -> LoopEvent | None:
    """The event of a drift verdict, or None when there is nothing to react to (ok, waiting).

    >>> drift_event({"status": "ok"}, "/h") is None
    True
    >>> e = drift_event({"status": "drift", "drift_share": 0.6, "champion": "v0001"}, "/h")
    >>> e.event, e.payload["drift_share"], e.payload["champion"]
    ('loopwright.drift.detected', 0.6, 'v0001')
    """
    if verdict.get("status") != "drift":
        return None
    numbers = {k: verdict[k] for k in DRIFT_NUMBERS if k in verdict}
    payload = {
        **numbers,
        "champion": verdict.get("champion"),
        "drifted_columns": list(verdict.get("drifted_columns") or [])[:20],
        "ts": verdict.get("ts"),
    }
    return LoopEvent(DRIFT_DETECTED, _resource(home), payload)


def annotation_event(body: Mapping[str, Any], home: str) -> LoopEvent | None:
    """The event of a Label Studio webhook body, or None for an action that brings no answer
    (a project or task change). The body is Label Studio's: `{"action", "project": {...},
    "task": {...}, "annotation": {...}}` (ANNOTATIONS_CREATED carries `annotation` as a list).
    """
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError('webhook body has no "action": send Label Studio\'s webhook payload')
    if action not in ANNOTATION_ACTIONS:
        return None
    annotations = body.get("annotation") or body.get("annotations") or []
    if isinstance(annotations, Mapping):
        annotations = [annotations]
    project, task = body.get("project"), body.get("task")
    payload = {
        "action": action,
        "project": project.get("id") if isinstance(project, Mapping) else project,
        "task": task.get("id") if isinstance(task, Mapping) else task,
        "annotations": [a.get("id") for a in annotations if isinstance(a, Mapping)][:100],
    }
    return LoopEvent(LABELS_ANNOTATED, _resource(home), payload)


#: deployment name -> the event that runs it
REACTIONS = {"retrain": DRIFT_DETECTED, "sync-labels": LABELS_ANNOTATED}


def automation_name(deployment: str, event: str) -> str:
    return f"loopwright: {event} -> {deployment}"


def trigger_spec(deployment: str, home: str) -> dict[str, Any] | None:
    """The automation that runs `deployment` on its event, for one data home (None: the
    deployment reacts to no event). A plain dict of `DeploymentEventTrigger`'s fields.

    >>> trigger_spec("retrain", "/h")["expect"], trigger_spec("curate", "/h")
    (['loopwright.drift.detected'], None)
    """
    event = REACTIONS.get(deployment)
    if event is None:
        return None
    return {
        "name": automation_name(deployment, event),
        "description": f"Runs {deployment} when {event} comes from {home}; [schedule] is the fallback.",
        "expect": [event],
        "match": {"prefect.resource.id": home_resource_id(home)},
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    }


def deployment_triggers(deployment: str, home: str) -> list:
    """Prefect's triggers for a deployment (empty when it reacts to no event)."""
    spec = trigger_spec(deployment, home)
    if spec is None:
        return []
    from prefect.events import DeploymentEventTrigger

    return [DeploymentEventTrigger(**spec)]


def emit(event: LoopEvent | None) -> str | None:
    """Send the event to the Prefect server of this process (PREFECT_API_URL); its id, or
    None when there was none to send or events are off. Never raises for a server that is
    down: the schedule is the fallback, a check must not fail for a lost event."""
    if event is None:
        return None
    from prefect.events import emit_event

    sent = emit_event(event=event.event, resource=event.resource, payload=event.payload)
    return str(sent.id) if sent is not None else None
