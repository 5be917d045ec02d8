"""The benchmark's policies: each one is a set of config overrides on top of `loopwright.toml`.

Why overrides and not code: the benchmark must measure the loop a user runs, so every policy
runs the one engine (`flows.loop.engine.Loop`) and differs from the configured loop only in
the keys written here. Each override goes through `load_config(overrides=...)`, so a typo is
an unknown-key error and a value out of range is the rules' own error, and the JSON records
each run's overrides (docs/bench-loop.md, "Policies").

>>> oracle(50).overrides["trigger.every_rows"]
50
>>> parse_policy("loop-random@10", 200).overrides["curation.strategy"]
'random'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

KINDS = (
    "configured", "static", "oracle", "periodic-random", "loop-random", "loop-uncertainty",
    "online", "river-arf", "river-hat",
)  # fmt: skip
#: River's stream learners, prequential on every label (flows/bench_river.py): the anchor
RIVER = ("river-arf", "river-hat")
#: kinds whose budget is part of the name (`loop-uncertainty@20`)
BUDGETED = ("periodic-random", "loop-random", "loop-uncertainty")
#: kinds that retrain through loopwright's triggers and gate (detection delay, false triggers)
GATED = ("configured", "loop-random", "loop-uncertainty", "online")
#: periodic-random retrains after the champion served this many batches
PERIODIC_BATCHES = 5

#: "triggers off": no rule fires on evidence; only `every_rows` (periodic) may fire
TRIGGERS_OFF: dict[str, object] = {
    "trigger.on_performance": False,
    "trigger.on_confidence": False,
    "trigger.on_drift": False,
    "trigger.recovery_drop": 0.0,
}
#: what every benchmark job adds, none of it a decision: no Evidently HTML report
BENCH_OVERRIDES: dict[str, object] = {"drift.html_report": "never"}
#: the policies that compare label budgets spent in Label Studio get no simulated user
#: feedback (the shipped `[demo] feedback_share` is the online demo's); `configured` keeps
#: the config's share (it is what `loopwright demo` runs), `online` sets its own
NO_FEEDBACK: dict[str, object] = {"demo.feedback_share": 0.0}


@dataclass(frozen=True)
class Policy:
    """A named set of overrides. `budget` is labels per batch (None: as configured)."""

    kind: str
    budget: int | None
    overrides: Mapping[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.budget}" if self.kind in BUDGETED else self.kind

    @property
    def gated(self) -> bool:
        return self.kind in GATED


def configured() -> Policy:
    """The loop exactly as the config sets it (what `loopwright demo` runs)."""
    return Policy("configured", None, {})


#: the online policy's changes: every gate pass rolled out (in process: no serving stats),
#: with the demo's share of users answering (the labels a rollout step judges on)
ONLINE_OVERRIDES: dict[str, object] = {
    "rollout.enabled": True,
    "rollout.stats_url": "off",
    "demo.feedback_share": 0.3,
}


def online() -> Policy:
    """The configured loop with rollouts on: a candidate the gate passes serves as canary
    through `[rollout] steps` before it is champion (`flows/bench_online.py` runs it)."""
    return Policy("online", None, dict(ONLINE_OVERRIDES))


def river(kind: str) -> Policy:
    """A River learner trained test-then-train on every label (no loop, no config): what a
    stream-learning user would run on the same stream."""
    return Policy(kind, None, dict(NO_FEEDBACK))


def static() -> Policy:
    """The first champion, never retrained: no labels, no trigger."""
    return Policy(
        "static",
        0,
        {"curation.budget_per_batch": 0, **TRIGGERS_OFF, "trigger.every_rows": 0, **NO_FEEDBACK},
    )


def oracle(batch_size: int) -> Policy:
    """Every row labeled; retrained after every batch; always promoted. The candidates are
    exactly the new batch (`window_rows` = a batch), drawn at random with no audit."""
    return Policy(
        "oracle",
        batch_size,
        {
            "curation.budget_per_batch": batch_size,
            "curation.pace": False,  # every row, every batch: never a quiet batch
            "curation.audit_share": 0.0,
            "curation.strategy": "random",
            "curation.window_rows": batch_size,
            **TRIGGERS_OFF,
            "trigger.every_rows": batch_size,
            "gate.enabled": False,
            **NO_FEEDBACK,
        },
    )


def periodic_random(budget: int, batch_size: int) -> Policy:
    """`budget` random labels per batch; retrained every `PERIODIC_BATCHES` batches served by
    the champion; always promoted (no gate)."""
    return Policy(
        "periodic-random",
        budget,
        {
            "curation.budget_per_batch": budget,
            "curation.pace": False,  # the yardstick spends its budget every batch
            "curation.strategy": "random",
            **TRIGGERS_OFF,
            "trigger.every_rows": PERIODIC_BATCHES * batch_size,
            "gate.enabled": False,
            **NO_FEEDBACK,
        },
    )


def loop_random(budget: int) -> Policy:
    """loopwright's triggers and gate with random sampling (the label-efficiency yardstick)."""
    return Policy(
        "loop-random",
        budget,
        {"curation.budget_per_batch": budget, "curation.strategy": "random", **NO_FEEDBACK},
    )


def loop_uncertainty(budget: int) -> Policy:
    """loopwright as configured (its `[curation] strategy` and audit), at `budget` labels."""
    return Policy("loop-uncertainty", budget, {"curation.budget_per_batch": budget, **NO_FEEDBACK})


def parse_policy(name: str, batch_size: int) -> Policy:
    """A policy from its name (`static`, `oracle`, `configured`, `<kind>@<labels per batch>`)."""
    kind, _, budget = name.strip().partition("@")
    if kind not in KINDS:
        raise ValueError(f"policy {name!r}: kind {kind!r} is unknown; use one of {list(KINDS)}")
    if kind not in BUDGETED:
        if budget:
            raise ValueError(f"policy {name!r}: {kind} takes no budget; write {kind!r}")
        named = {"configured": configured, "static": static, "online": online}
        if kind in RIVER:
            return river(kind)
        return named.get(kind, lambda: oracle(batch_size))()
    if not budget.isdigit() or int(budget) < 1:
        raise ValueError(
            f"policy {name!r}: {kind} needs a budget of labels per batch >= 1, e.g. '{kind}@20'"
        )
    b = int(budget)
    if kind == "periodic-random":
        return periodic_random(b, batch_size)
    return loop_random(b) if kind == "loop-random" else loop_uncertainty(b)


def default_policies(batch_size: int, shares: list[float], multipliers: list[int]) -> list[Policy]:
    """`configured`, `static`, `oracle`, periodic-random and loop-uncertainty at each budget
    (a share of the batch), loop-random at each budget times each multiplier (capped at a batch)."""
    budgets = sorted({max(1, round(sh * batch_size)) for sh in shares})
    out = [configured(), static(), oracle(batch_size)]
    for b in budgets:
        out += [periodic_random(b, batch_size), loop_uncertainty(b)]
    for rb in sorted({min(batch_size, b * m) for b in budgets for m in multipliers}):
        out.append(loop_random(rb))
    return out


def select_policies(
    batch_size: int, shares: list[float], multipliers: list[int], wanted: Iterable[str] = ()
) -> list[Policy]:
    """The policies a run asks for: each item of `wanted` is a kind (every policy of that kind
    in the default set) or a full name (`loop-random@7`); nothing asked = the default set."""
    base = default_policies(batch_size, shares, multipliers)
    wanted = [w.strip() for w in wanted if w.strip()]
    if not wanted:
        return base
    out: list[Policy] = []
    for w in wanted:
        picked = [p for p in base if p.kind == w] if w in KINDS else []
        picked = picked or [parse_policy(w, batch_size)]  # `online`: not in the default set
        out += [p for p in picked if p.name not in {q.name for q in out}]
    return out


def policy_config(policy: Policy, config: str | Path | None = None):
    """The config a job of `policy` runs: `config` (+ environment), then the policy's overrides
    and the benchmark's own (artifacts only). A bad override names the policy."""
    from flows.config import load_config
    from flows.config_checks import ConfigError

    try:
        return load_config(config, overrides={**BENCH_OVERRIDES, **policy.overrides})
    except ValueError as exc:  # ConfigError, or a rule's range check
        raise ConfigError(f"policy {policy.name}: {exc}") from None
