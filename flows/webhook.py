"""`loopwright webhook-receiver`: Label Studio's webhooks in, Prefect events out.

Why a receiver of our own and not Prefect's webhooks: Prefect server (open source) has no
incoming-webhook endpoint (Prefect Cloud has), and Label Studio posts its own JSON. This tiny
FastAPI app turns an annotation created or updated into `loopwright.labels.annotated`
(flows/events.py) about its data home; the automation `loopwright deploy` made runs
`sync-labels`, which pulls every finished annotation (idempotent), so a lost or repeated
webhook changes nothing but the delay.

FastAPI is imported at the top (not in `make_app`): it resolves the handlers' annotations
from this module's names. Only the `webhook-receiver` command imports this module.

Security: it binds 127.0.0.1 by default; with `LOOPWRIGHT_WEBHOOK_TOKEN` set, a request
must carry `Authorization: Bearer <token>` (Label Studio sends it as a webhook header:
`register_webhook(..., secret=...)`). The token is never logged nor echoed.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request

from flows.events import ANNOTATION_ACTIONS, annotation_event, emit

PATH = "/webhooks/labelstudio"
TOKEN_ENV = "LOOPWRIGHT_WEBHOOK_TOKEN"


def make_app(home: str, token: str | None = None, sender=emit):
    """The receiver for one data home. `sender` sends a LoopEvent (tests pass a list's
    append to see what would be sent)."""
    app = FastAPI(title="loopwright webhook receiver", docs_url="/docs")
    counts = {"received": 0, "emitted": 0, "ignored": 0}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "home": home, **counts}

    @app.post(PATH)
    async def labelstudio(
        request: Request, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        if token is not None and not hmac.compare_digest(authorization or "", f"Bearer {token}"):
            raise HTTPException(401, f"Authorization: Bearer <{TOKEN_ENV}> is required")
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(422, "the body is not JSON: send Label Studio's payload") from None
        if not isinstance(body, dict):
            raise HTTPException(422, "the body is not a JSON object: send Label Studio's payload")
        counts["received"] += 1
        try:
            event = annotation_event(body, home)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if event is None:
            counts["ignored"] += 1
            return {"emitted": None, "action": body.get("action")}
        event_id = sender(event)
        counts["emitted"] += 1
        return {"emitted": event.event, "id": event_id, "action": body["action"]}

    return app


def serve(home: str, host: str, port: int) -> None:
    import uvicorn

    token = os.environ.get(TOKEN_ENV) or None
    uvicorn.run(make_app(home, token), host=host, port=port, log_level="warning")


def register_webhook(
    ls_url: str, ls_token: str, project: int, receiver_url: str, secret: str | None = None
) -> int:
    """Make Label Studio post annotation events of `project` to the receiver; the webhook's
    id. Idempotent: a webhook of the project with the same URL is reused.

    Label Studio refuses webhooks to 127.0.0.1 unless its server runs with
    LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false (shared FIELD-NOTES)."""
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=ls_url, api_key=ls_token)
    for hook in client.webhooks.list(project=str(project)):
        if hook.url == receiver_url:
            return hook.id
    headers = {"Authorization": f"Bearer {secret}"} if secret else None
    hook = client.webhooks.create(
        url=receiver_url,
        project=project,
        send_payload=True,
        send_for_all_actions=False,
        actions=list(ANNOTATION_ACTIONS),
        is_active=True,
        **({"headers": headers} if headers else {}),
    )
    return hook.id
