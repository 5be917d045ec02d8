"""`loopwright rollout start VERSION | step | status | pause | resume | abort`.

`start` and `step` run the `rollout` flow (the same function as its deployment); `status`,
`pause`, `resume` and `abort` act on the rollout state directly (a person at the terminal
must not wait for a Prefect server to stop a bad canary).
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer

from flows.cli_common import ConfigOpt, HomeOpt, JsonOpt, config_or_fail, console, fail, run_flow

rollout_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Roll a candidate out online."
)
ReasonOpt = Annotated[str, typer.Option(help="why (kept in the rollout and alias history)")]


def _actor() -> str:
    try:
        return f"rollout cli by {getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "rollout cli"


def _registry(config: str | None, home: str | None):
    from flows.loop.open import open_home
    from storage.registry import Registry

    cfg = config_or_fail(config)
    from pathlib import Path

    return Registry(open_home(Path(home) if home else cfg.home_path, cfg.storage))


def _show(info: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    analysis = info.get("analysis")
    if analysis:
        console.print(
            f"{analysis['decision'].upper()} at {analysis['weight']:.0%}: "
            + "; ".join(analysis["reasons"])
        )
    if info.get("candidate"):
        console.print(
            f"rollout {info.get('id')} of {info['candidate']}: {info.get('state')} at weight "
            f"{info.get('weight', 0):.0%}"
        )
    elif info.get("note"):
        console.print(info["note"])


@rollout_app.command("start")
def start(
    version: Annotated[str, typer.Argument(help="registry version to roll out as canary")],
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point the canary at VERSION with the first weight of the rollout steps."""
    from flows.rollout import rollout_flow

    info = run_flow(rollout_flow, config, home, as_json=False, version=version)
    _show(info, as_json)


@rollout_app.command("step")
def step(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Analyze the current step (canary vs champion) and advance, hold or roll back."""
    from flows.rollout import rollout_flow

    info = run_flow(rollout_flow, config, home, as_json=False)
    _show(info, as_json)


@rollout_app.command("status")
def status(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The active rollout and every finished one, with their steps and decisions."""
    from flows.loop.rollout import status as read_status

    info = read_status(_registry(config, home).home)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    console.print(f"rollout: {info['state']}, canary {info['canary']} at {info['weight']:.0%}")
    for r in info["history"]:
        steps = ", ".join(f"{s['weight']:.0%} {s['decision']}" for s in r["steps"]) or "no step"
        console.print(f"  {r['candidate']}: {r['outcome']} ({steps})")


def _admin(action: str, config, home, reason: str, as_json: bool) -> None:
    from flows.loop import rollout
    from storage.home import StorageError

    reg = _registry(config, home)
    try:
        if action == "pause":
            state = rollout.pause(reg, reason=reason, actor=_actor())
        elif action == "resume":
            state = rollout.resume(reg, actor=_actor())
        else:
            state = rollout.abort(reg, reason=reason, actor=_actor())
    except StorageError as exc:
        fail(exc)
    from storage.rollout_state import summary

    _show(summary(state), as_json)


@rollout_app.command("pause")
def pause(
    reason: ReasonOpt = "paused by a person",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop stepping; the canary keeps its weight until resume or abort."""
    _admin("pause", config, home, reason, as_json)


@rollout_app.command("resume")
def resume(config: ConfigOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Step the paused rollout again, from the same step and weight."""
    _admin("resume", config, home, "", as_json)


@rollout_app.command("abort")
def abort(
    reason: ReasonOpt = "aborted by a person",
    config: ConfigOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End the rollout: canary weight 0 and cleared, champion unchanged."""
    _admin("abort", config, home, reason, as_json)
