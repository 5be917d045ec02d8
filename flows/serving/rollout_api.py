"""Admin endpoints of the rollout, included in the serving app (`app.include_router(router)`).

`GET /v1/rollout` is open (the server listens on 127.0.0.1): the rollout's state, canary,
weight and history, as `loopwright status --json` shows them. `POST /v1/rollout/pause`,
`/resume`, `/abort` change it and need `Authorization: Bearer <token>`, the token being the
environment's `LOOPWRIGHT_ADMIN_TOKEN` (read per request, so a rotated token applies without
a restart). Unset: writes are disabled (503 naming the variable). Missing or wrong: 401 and
nothing changes. The token is compared in constant time and never echoed, logged or stored.

The app says where its data home is with `app.state.home` (a `DataHome` or a path), or
through its serving service (`app.state.service.home`).
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from storage.home import DataHome, StorageError
from storage.registry import Registry

TOKEN_ENV = "LOOPWRIGHT_ADMIN_TOKEN"
ACTOR = "admin-api"

router = APIRouter(tags=["rollout"])


class AdminAction(BaseModel):
    """Optional body of an admin write: why (kept in the rollout state and alias history)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


def home_of(request: Request) -> DataHome:
    state = request.app.state
    home = getattr(state, "home", None) or getattr(getattr(state, "service", None), "home", None)
    if home is None:
        raise HTTPException(500, "the serving app has no data home (app.state.home is unset)")
    return home if isinstance(home, DataHome) else DataHome.from_path(home)


def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
    expected = os.environ.get(TOKEN_ENV, "")
    if not expected:
        raise HTTPException(
            503,
            f"admin writes are disabled: set {TOKEN_ENV} in the server's environment and send "
            "it as 'Authorization: Bearer <token>'",
        )
    scheme, _, given = (authorization or "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )
    if not ok:
        raise HTTPException(
            401,
            "missing or wrong admin token: send 'Authorization: Bearer <token>' with the "
            f"value of {TOKEN_ENV}; nothing was changed",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get("/v1/rollout")
def get_rollout(home: Annotated[DataHome, Depends(home_of)]) -> dict:
    """The rollout's state, canary, weight and every rollout's steps and outcome."""
    from flows.loop.rollout import status

    return status(home)


def _act(action: str, home: DataHome, body: AdminAction | None) -> dict:
    from flows.loop import rollout

    reg = Registry(home)
    reason = (body.reason if body else "").strip() or f"{action} via the admin API"
    try:
        if action == "pause":
            state = rollout.pause(reg, reason=reason, actor=ACTOR)
        elif action == "resume":
            state = rollout.resume(reg, actor=ACTOR)
        else:
            state = rollout.abort(reg, reason=reason, actor=ACTOR)
    except StorageError as exc:
        raise HTTPException(409, str(exc)) from None
    from storage.rollout_state import summary

    return summary(state)


AdminDep = Annotated[None, Depends(require_admin)]
HomeDep = Annotated[DataHome, Depends(home_of)]


@router.post("/v1/rollout/pause")
def pause(_: AdminDep, home: HomeDep, body: AdminAction | None = None) -> dict:
    """Stop stepping the active rollout; the canary keeps its weight."""
    return _act("pause", home, body)


@router.post("/v1/rollout/resume")
def resume(_: AdminDep, home: HomeDep, body: AdminAction | None = None) -> dict:
    """Step the paused rollout again, from the same step and weight."""
    return _act("resume", home, body)


@router.post("/v1/rollout/abort")
def abort(_: AdminDep, home: HomeDep, body: AdminAction | None = None) -> dict:
    """End the active rollout: canary weight 0, champion unchanged."""
    return _act("abort", home, body)
