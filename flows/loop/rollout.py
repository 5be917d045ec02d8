"""The `rollout` stage: a candidate that passed the offline gate serves a growing share of
traffic as `canary`, judged online at every step, until it is champion or rolled back.

`start` points the canary at the candidate with the first weight; each `step` gathers what
each arm served since the step started (prediction log: role `canary` vs `champion`, and the
unbiased labels that arrived for those rows), the serving stats through a port (a callable
`stats(since) -> dict` in the shape of the server's `GET /v1/stats`; when it raises, the
evidence is missing and the step holds), calls the pure `evaluation.rollout.analyze`, and
acts: advance (the next weight, by compare-and-swap on the weight), hold, or roll back.

Rollback: weight 0 and the canary alias cleared in the same registry write (routing shows no
canary; the alias history keeps which version it was, and why it left, in the event's
reason), champion unchanged. At the last step (100 %) the canary becomes champion by
compare-and-swap against the champion the rollout started from; if that champion moved
meanwhile (a person promoted or rolled back), the rollout is aborted instead: it never
undoes a move it did not make. No Prefect here: the flow and the CLI call these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from evaluation.rollout import ArmEvidence, Evidence, RolloutRules, analyze
from storage.registry import AliasConflict, Registry
from storage.rollout_evidence import arm_evidence
from storage.rollout_state import (
    ACTIVE,
    RolloutConflict,
    all_rollouts,
    begin,
    current_rollout,
    reconcile,
    summary,
    update,
)

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

#: a serving-stats port: since -> the `GET /v1/stats` dict
Stats = Callable[[datetime], dict]


def _now(now: datetime | None) -> datetime:
    value = now or datetime.now(UTC)
    if value.tzinfo is None:
        raise ValueError("now is naive: pass an aware datetime (datetime.now(UTC))")
    return value


def start(
    loop: Loop, candidate: str, *, actor: str = "rollout", now: datetime | None = None
) -> dict:
    """Begin rolling `candidate` out against the current champion (first weight of
    `[rollout] steps`, or `ab_split`). `RolloutConflict` when one is already active."""
    rules: RolloutRules = loop.cfg.rollout
    reg = loop.registry
    champion = reg.get("champion")
    if champion is None:
        raise ValueError(
            "there is no champion to roll out against: promote a first model "
            "(loopwright promote VERSION --reason ...)"
        )
    meta = reg.meta(candidate)
    if meta.get("task") != loop.task.name or list(meta.get("classes") or []) != list(
        loop.task.classes
    ):
        raise ValueError(
            f"model {candidate} is a {meta.get('task')!r} model with classes "
            f"{meta.get('classes')}: roll out a version of task {loop.task.name!r}"
        )
    reg.load(candidate)  # a corrupted model never gets traffic
    state = begin(
        reg,
        candidate=candidate,
        champion=champion,
        mode=rules.mode,
        steps=rules.weights,
        weight=rules.weights[0],
        actor=actor,
        reason=f"rollout of {candidate} started ({rules.mode}, {rules.weights[0]:.0%})",
        ts=_now(now).isoformat(),
    )
    return summary(state)


def start_after_gate(loop: Loop, version: str, champion: str) -> dict:
    """The retrain stage's branch when the gate passes and `[rollout] enabled`: `version`
    starts as canary; champion stays until the rollout promotes it. A rollout already
    active keeps going (the new challenger waits for the next retrain)."""
    from flows.loop.clock import traffic_now

    try:  # on the traffic's clock: a replay's step windows are its logical batches
        started = start(loop, version, actor="retrain", now=traffic_now(loop))
    except RolloutConflict as exc:
        return {"promoted": False, "champion": champion, "rollout": None, "conflict": str(exc)}
    return {"promoted": False, "champion": champion, "rollout": started["id"]}


def stats_over_http(url: str, timeout_s: float = 5.0) -> Stats:
    """The production stats port: `GET <url>?since=ISO` of the serving endpoint."""

    def read(since: datetime) -> dict:
        import httpx

        response = httpx.get(url, params={"since": since.isoformat()}, timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    return read


def stats_port(cfg: Any) -> Stats | None:
    """The stats port `[rollout] stats_url` names ("" = the `[serving]` endpoint's
    `/v1/stats`; "off" = None: no server, errors and latency are not judged)."""
    url = cfg.rollout.stats_url
    if url == "off":
        return None
    if not url:
        serving = getattr(cfg, "serving", None)
        host, port = (serving.host, serving.port) if serving else ("127.0.0.1", 8080)
        url = f"http://{host}:{port}/v1/stats"
    return stats_over_http(url)


def _arm_stats(stats: dict, version: str) -> dict:
    entry = (stats.get("versions") or {}).get(version)
    if not isinstance(entry, dict):
        return {}
    latency = entry.get("latency_ms") or {}
    return {
        "requests": int(entry.get("requests", 0)),
        "errors": int(entry.get("errors", 0)),
        "p99_ms": None if latency.get("p99") is None else float(latency["p99"]),
    }


def gather(loop: Loop, state: dict, until: datetime, stats: Stats | None) -> tuple[Evidence, dict]:
    """Evidence for the current step (ab mode: since the rollout started) and the window."""
    key = "started" if state["mode"] == "ab" else "step_started"
    since = datetime.fromisoformat(state[key])
    arms = {}
    versions = {"canary": state["candidate"], "champion": state["champion_at_start"]}
    for role, version in versions.items():
        found = arm_evidence(loop.queries, role, version, since, until)
        found["reference_confidence"] = loop.registry.meta(version).get("reference_confidence")
        arms[role] = found
    problem = None
    if stats is not None:
        try:
            served = stats(since)
            for role, version in versions.items():
                arms[role].update(_arm_stats(served, version))
        except Exception as exc:  # the port failed: the evidence is missing, the step holds
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
    previous = [a for a in state["analyses"] if "ab_p_value" in a.get("numbers", {})]
    evidence = Evidence(
        canary=ArmEvidence(**arms["canary"]),
        champion=ArmEvidence(**arms["champion"]),
        stats_used=stats is not None,
        stats_problem=problem,
        holds=int(state.get("holds", 0)),
        previous_p=float(previous[-1]["numbers"]["ab_p_value"]) if previous else 1.0,
    )
    return evidence, {"since": since.isoformat(), "until": until.isoformat()}


def step(
    loop: Loop, *, stats: Stats | None = None, now: datetime | None = None, actor: str = "rollout"
) -> dict:
    """Analyze the active rollout's current step and act on the decision; return the
    rollout's summary with `"analysis"` (None when nothing ran: no rollout, or paused)."""
    until = _now(now)
    reg = loop.registry
    state = current_rollout(loop.home)
    if state is None:
        return {"state": None, "analysis": None, "note": "no active rollout"}
    if state["state"] != "running":
        return {**summary(state), "analysis": None, "note": f"rollout is {state['state']}"}
    champion = reg.get("champion")
    if champion == state["candidate"]:  # promoted, then a crash before the state was written
        done = update(reg, state["id"], lambda s: _finish_promotion(reg, s, actor))
        return {**summary(done), "analysis": None}
    reconcile(reg, state, actor)
    if champion != state["champion_at_start"]:
        reason = (
            f"champion moved to {champion} during the rollout (it started from "
            f"{state['champion_at_start']}): rollout aborted, the move is kept"
        )
        return {**summary(abort(reg, reason=reason, actor=actor)), "analysis": None}
    evidence, window = gather(loop, state, until, stats)
    analysis = analyze(loop.cfg.rollout, evidence)
    record = {
        "step_index": state["step_index"],
        "weight": state["weight"],
        **asdict(analysis),
        "window": window,
        "ts": until.isoformat(),
    }
    seen = len(state["analyses"])
    done = update(reg, state["id"], lambda s: _act(reg, s, record, until, actor, seen))
    return {**summary(done), "analysis": record}


def _act(reg: Registry, state: dict, record: dict, until: datetime, actor: str, seen: int) -> dict:
    """Apply one analysis (inside the registry lock, see `rollout_state.update`); refused
    when the rollout moved since its evidence was gathered (another step, a pause)."""
    if state["state"] != "running" or len(state["analyses"]) != seen:
        raise RolloutConflict(
            f"rollout {state['id']} changed while this step analyzed it (now {state['state']}, "
            f"{len(state['analyses'])} analyses): nothing done; step again"
        )
    state["analyses"] = [*state["analyses"], record]
    decision, why = record["decision"], "; ".join(record["reasons"])[:500]
    if decision == "hold":
        state["holds"] = int(state.get("holds", 0)) + 1
        return state
    if decision == "rollback":
        return _rollback(reg, state, f"rolled back at {state['weight']:.0%}: {why}", actor)
    nxt = state["step_index"] + 1
    weights = state["steps"]
    if nxt >= len(weights) or weights[nxt] >= 1.0:
        return _promote(reg, state, f"rollout passed at {state['weight']:.0%}: {why}", actor)
    reg.set_weight(
        "canary",
        weights[nxt],
        reason=f"advance to {weights[nxt]:.0%}: {why}",
        actor=actor,
        expected=state["weight"],
    )
    state.update(step_index=nxt, weight=weights[nxt], step_started=until.isoformat(), holds=0)
    return state


def _rollback(reg: Registry, state: dict, reason: str, actor: str, outcome="rolled_back") -> dict:
    if reg.aliases().get("canary") is not None:
        reg.clear_alias("canary", reason=reason, actor=actor)
    state.update(state=outcome, weight=0.0, outcome_reason=reason)
    return state


def _promote(reg: Registry, state: dict, reason: str, actor: str) -> dict:
    try:
        reg.set_alias(
            "champion", state["candidate"], reason=reason, actor=actor,
            expected=state["champion_at_start"],
        )  # fmt: skip
    except AliasConflict as exc:
        return _rollback(reg, state, f"promotion refused: {exc}", actor, outcome="aborted")
    state["outcome_reason"] = reason
    return _finish_promotion(reg, state, actor)


def _finish_promotion(reg: Registry, state: dict, actor: str) -> dict:
    if reg.aliases().get("canary") is not None:
        reg.clear_alias("canary", reason=f"{state['candidate']} is champion now", actor=actor)
    reason = state.get("outcome_reason") or f"{state['candidate']} was made champion"
    state.update(state="promoted", weight=1.0, outcome_reason=reason)
    return state


def _active(reg: Registry) -> dict:
    state = current_rollout(reg.home)
    if state is None or state["state"] not in ACTIVE:
        raise RolloutConflict("no active rollout: start one (loopwright rollout start VERSION)")
    return state


def pause(reg: Registry, *, reason: str = "paused by a person", actor: str = "rollout") -> dict:
    """Stop stepping; the canary keeps its weight (a person looks first). Idempotent."""
    state = _active(reg)
    return update(reg, state["id"], lambda s: {**s, "state": "paused", "paused_reason": reason})


def resume(reg: Registry, *, actor: str = "rollout") -> dict:
    """Step again from the same step and weight."""
    state = _active(reg)
    return update(reg, state["id"], lambda s: {**s, "state": "running"})


def abort(reg: Registry, *, reason: str = "aborted by a person", actor: str = "rollout") -> dict:
    """End the rollout now: weight 0, canary cleared, champion unchanged."""
    state = _active(reg)
    return update(reg, state["id"], lambda s: _rollback(reg, s, reason, actor, "aborted"))


def status(home: Any) -> dict:
    """`{"state", "canary", "weight", "history": [...]}` for `status --json` and the API."""
    from storage.routing import read_routing

    routing = read_routing(home)
    rollouts = [summary(s) for s in all_rollouts(home)]
    current = current_rollout(home)
    return {
        "state": current["state"] if current else "idle",
        "canary": routing.canary,
        "weight": routing.canary_weight,
        "current": summary(current) if current else None,
        "history": rollouts,
    }
