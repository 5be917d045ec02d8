"""The rollout stage of a round, and the rule that holds back new candidates meanwhile.

Why a module of its own: `run_round` calls `Stages.rollout` after `retrain`, and both
drivers (the engine in process, the demo's `rollout` flow) must decide alike, so what a
round's rollout stage does is written once here:
- the retrain of this round just started a rollout: nothing to analyze yet (its first step
  has served no traffic), the round says `started`;
- a rollout is running: one analysis step (`flows.loop.rollout.step`), its decision;
- none: nothing (decision None).

The rollout's clock is the traffic's: in a replay (the benchmark) the newest prediction time
this loop scored (logical timestamps, so a step's window is exactly the batches scored since
it started); behind a server (the demo, production) the wall clock, the clock the server
stamps its predictions with.

While a rollout is active the loop trains no new candidate (`busy`): triggers are still
evaluated and recorded (`last_trigger`), the round says the trigger fired and did not
retrain, and the next retrain after the rollout ends starts from the champion it left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.loop.clock import traffic_now
from storage.rollout_state import ACTIVE, current_rollout
from storage.routing import read_routing

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop
    from flows.loop.rollout import Stats


def busy(loop: Loop) -> str | None:
    """Why no new candidate may be trained now (None: it may)."""
    state = current_rollout(loop.home)
    if state is None or state["state"] not in ACTIVE:
        return None
    return (
        f"rollout of {state['candidate']} is {state['state']} at {state['weight']:.0%}: no new "
        "candidate until it ends (promoted, rolled back or aborted)"
    )


def stage(loop: Loop, retrain_result: dict, stats: Stats | None) -> dict:
    """The round's rollout stage: `{"decision", "weight", "promoted", "rollout", "step"}`.

    `decision`: None (no rollout), `started`, or the step's `advance` / `hold` /
    `rollback` (None too when the rollout is paused); `weight`: the canary's traffic share
    after the stage; `promoted`: the canary became champion in this stage."""
    started = retrain_result.get("rollout")
    if started:
        return {
            "decision": "started",
            "weight": read_routing(loop.home).canary_weight,
            "promoted": False,
            "rollout": started,
            "step": None,
        }
    state = current_rollout(loop.home)
    if state is None or state["state"] not in ACTIVE:
        return {"decision": None, "weight": 0.0, "promoted": False, "rollout": None, "step": None}
    from flows.loop import rollout

    before = loop.registry.get("champion")
    result = rollout.step(loop, stats=stats, now=traffic_now(loop))
    analysis = result.get("analysis")
    routing = read_routing(loop.home)
    return {
        "decision": analysis["decision"] if analysis else None,
        "weight": routing.canary_weight if routing.canary else 0.0,
        "promoted": routing.champion != before and routing.champion == state["candidate"],
        "rollout": state["id"],
        "step": result,
    }
