"""`rollout`: start a candidate's online rollout, or analyze and act on its current step.

The work is the engine's rollout stage (`flows/loop/rollout.py`): this flow opens the loop,
calls one stage function and says what was decided. Schedule it (e.g. every few minutes
while a rollout runs) or run it from the CLI: `loopwright rollout step`.
"""

from __future__ import annotations

from prefect import flow

from flows.loop import rollout
from flows.loop.online import stage
from flows.steps import open_flow_loop


@flow(name="rollout", log_prints=True)
def rollout_flow(
    version: str | None = None,
    config_path: str | None = None,
    home: str | None = None,
    started: str | None = None,
    stats_url: str | None = None,
) -> dict:
    """With `version`: start its rollout; without: one analysis step of the active rollout
    (the round's rollout stage, `flows.loop.online.stage`: `started` names the rollout the
    round's retrain just started, which is not analyzed yet). Its result has `"round"`:
    the stage's decision, weight and whether the canary became champion. `stats_url`: the
    serving endpoint's `/v1/stats` (default `[rollout] stats_url`)."""
    loop = open_flow_loop(config_path, home)
    if version is not None:
        result = rollout.start(loop, version, actor="rollout flow")
        print(f"rollout {result['id']} of {version} started at {result['weight']:.0%}")
        return result
    if stats_url == "off":  # no server (an offline demo): errors and latency not judged
        stats = None
    else:
        stats = rollout.stats_over_http(stats_url) if stats_url else rollout.stats_port(loop.cfg)
    done = loop.steps("rollout-step", stage, loop, {"rollout": started}, stats)
    result = done["step"] or {"state": None, "analysis": None, "note": "no active rollout"}
    analysis = result.get("analysis")
    if started:
        print(f"rollout {started} started at {done['weight']:.0%}: its first step serves now")
    elif analysis is None:
        print(result.get("note", "nothing to do"))
    else:
        print(
            f"{analysis['decision'].upper()} at {analysis['weight']:.0%}: "
            + "; ".join(analysis["reasons"])
        )
    return {**result, "round": {k: done[k] for k in ("decision", "weight", "promoted")}}
