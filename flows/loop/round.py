"""One round of the loop, written once: what happens to a production batch, in order.

Why here and nowhere else: the demo (Prefect flows + Label Studio), the benchmark (the engine
in process) and a test all call `run_round`, so the order of the stages and the fields of a
round exist once, and "the demo and the benchmark decide alike" is a comparison of two
`Stages` implementations, not of two copies of the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import pyarrow as pa

from flows.loop.estimate import accuracy_of


@dataclass(frozen=True)
class Round:
    """What the loop decided after one batch (contract: docs/contracts.md, "Rounds")."""

    batch: int
    trigger_fired: bool
    trigger_kind: str | None
    retrained: bool
    promoted: bool
    labels_added: int
    #: the rollout stage: None (no rollout), "started", "advance", "hold" or "rollback"
    rollout_decision: str | None = None
    #: the canary's traffic share after the round (0.0: no canary)
    canary_weight: float = 0.0
    #: the drift check's label-free accuracy estimate (None: none made; flows/loop/estimate.py)
    estimate: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Stages(Protocol):
    """The loop's stages as a driver runs them: `flows.loop.engine.Loop` in process, or the
    demo's Prefect flows (each opening its own `Loop` over the same data home)."""

    def score(self, table: pa.Table) -> dict: ...

    def feedback(self, pairs: Sequence[tuple[str, str]]) -> int: ...

    def drift_check(self) -> dict: ...

    def curate(self, budget: int | None = None, seed: int | None = None) -> dict: ...

    def label(self) -> int: ...

    def sync(self) -> dict: ...

    def retrain(self, force: bool = False, reason: str = "") -> dict: ...

    def rollout(self, retrain_result: dict) -> dict: ...


def curation_seed(run_seed: int, batch: int) -> int:
    """The seed of a round's curation draw: one formula for every driver.

    >>> curation_seed(3, 2)
    300011
    """
    return run_seed * 100_003 + batch


@dataclass(frozen=True)
class RoundResult:
    """A round and what its stages returned (for drivers that print or measure more)."""

    round: Round
    scored: dict
    drift: dict
    curated: dict
    answered: int
    synced: dict
    retrain: dict
    rollout: dict


def run_round(
    stages: Stages,
    table: pa.Table,
    index: int,
    run_seed: int,
    feedback: Sequence[tuple[str, str]] = (),
) -> RoundResult:
    """Score the batch, take the users' feedback on it, check drift, curate (budget from
    `[curation]`), let people label, sync their labels, retrain when a trigger fires (not
    while a rollout runs: `flows.loop.online.busy`), and step the rollout: the loop, once
    per batch. `feedback`: (request_id, label) pairs the batch's users answered
    (`flows.loop.feedback.simulated_feedback` in a simulation)."""
    scored = stages.score(table)
    if feedback:
        stages.feedback(feedback)
    drift = stages.drift_check()
    curated = stages.curate(seed=curation_seed(run_seed, index))
    answered = stages.label()
    synced = stages.sync()
    result = stages.retrain()
    online = stages.rollout(result)
    trig = result["trigger"]
    rnd = Round(
        batch=index,
        trigger_fired=bool(trig["fire"]),
        trigger_kind=trig["kind"] if trig["fire"] else None,
        retrained=bool(result.get("retrained")),
        promoted=bool(result.get("promoted")) or bool(online.get("promoted")),
        labels_added=int(synced.get("new_labels", 0)),
        rollout_decision=online.get("decision"),
        canary_weight=round(float(online.get("weight") or 0.0), 6),
        estimate=accuracy_of(drift),
    )
    return RoundResult(rnd, scored, drift, curated, answered, synced, result, online)
