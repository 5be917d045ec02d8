"""The steps of one replayed batch: curation, the triggers, the card and the gate.

Why a module of its own: `flows/bench_replay.py` keeps the order of a batch's steps (the
loop a reader wants to follow); each step here calls the same functions the flows call,
wired as `flows/curate.py`, `flows/retrain.py` and `flows/drift_check.py` wire them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curation.drift import compute_drift
from curation.sampling import select
from evaluation.gate import GateRules, decide
from evaluation.report_card import build_card, evaluate_model
from flows.bench_world import Settings, World
from retrain.dataset_policy import select_rows
from retrain.digits.task import TASK
from retrain.model import load_module, predict_proba
from retrain.triggers import (
    Episode,
    TriggerDecision,
    combine,
    confidence_trigger,
    drift_trigger,
    performance_trigger,
    recovery_step,
)

#: one logged batch: (batch index, probs, predicted class, champion version)
LogEntry = tuple[int, np.ndarray, np.ndarray, int]


class Labeled:
    """The label log and dataset versions, as growing arrays."""

    def __init__(self, world: World) -> None:
        self.ids: list[str] = list(world.seed_ids)
        self.x: list[np.ndarray] = [world.seed_x]
        self.y: list[np.ndarray] = [world.seed_y]
        self.ts: list[int] = [-1] * len(world.seed_ids)
        self.source: list[str] = ["seed"] * len(world.seed_ids)
        self.attrs: list[dict] = [{"phase": "seed"}] * len(world.seed_ids)

    def add(self, ids: list[str], x: np.ndarray, y: np.ndarray, batch: int, attrs: list) -> None:
        self.ids += ids
        self.x.append(x)
        self.y.append(y)
        self.ts += [batch] * len(ids)
        self.source += ["labelstudio"] * len(ids)
        self.attrs += attrs

    def dataset(self, policy: str, window_rows: int) -> np.ndarray:
        table = pa.table({"ts": self.ts, "source": self.source, "row": np.arange(len(self.ids))})
        return np.asarray(select_rows(table, policy, window_rows)["row"].to_numpy())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self.x) > 1:
            self.x, self.y = [np.concatenate(self.x)], [np.concatenate(self.y)]
        return self.x[0], self.y[0]


def card_decision(world, s, chall_state, champ_net, x, y, attrs, recent=None):
    common = dict(
        recent=recent,
        x=x,
        y=y,
        attrs=attrs,
        classes=TASK.classes,
        slice_keys=TASK.slice_attrs,
        expectations=TASK.expectations,
        latency_rows=0,
    )
    chall_net = load_module(TASK, chall_state)
    ch = evaluate_model(
        name="challenger",
        version="c",
        predict_proba=lambda v: predict_proba(chall_net, v),
        **common,
    )
    cp = evaluate_model(
        name="champion", version="p", predict_proba=lambda v: predict_proba(champ_net, v), **common
    )
    card = build_card(
        challenger=ch, champion=cp, task=TASK.name, dataset={}, eval_set={}, recent=recent
    )
    rules = GateRules(
        forget_tolerance=s.gate_forget_tolerance,
        min_recent_rows=s.gate_min_recent_rows,
        min_gain_z=s.gate_min_gain_z,
        tolerance=s.gate_tolerance,
        slice_tolerance=s.gate_slice_tolerance,
        min_slice_rows=s.gate_min_slice_rows,
        min_eval_rows=s.gate_min_eval_rows,
    )
    return decide(card, rules), chall_net


def training_reference(net, x: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """`drift-check`'s reference: a seeded sample of n training rows, scored by the champion
    (features, predicted class, confidence); the same draw as `flows.drift_check.reference_rows`."""
    if len(x) > n:
        x = x[np.sort(np.random.default_rng(0).choice(len(x), size=n, replace=False))]
    probs = predict_proba(net, x)
    return x.reshape(len(x), -1), probs.argmax(axis=1), probs.max(axis=1)


def failed(gate) -> list[str]:
    return [c["detail"] for c in gate.checks if not c["passed"]]


def accuracy_on(net, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict_proba(net, x).argmax(axis=1) == y).mean())


def pick_rows(
    world: World, log: list[LogEntry], policy, s: Settings, i: int, labeled_ids: set[str]
) -> list[tuple[int, int, str]]:
    """(batch, row, reason) to label at batch i: nothing (static), everything (oracle), or
    `curation.sampling.select` over the last `candidate_batches` batches' logged predictions
    (the flow's candidate window), never a row already labeled."""
    if policy.kind == "static":
        return []
    elif policy.kind == "oracle":
        return [(i, k, "all") for k in range(len(world.batches[i].y))]
    else:
        # candidates: the recent batches' logged predictions (the flow's candidate window)
        window = log[-s.candidate_batches :]
        rids = [world.batches[j].request_ids[k] for j, pr, _, _ in window for k in range(len(pr))]
        table = pa.table(
            {
                "request_id": rids,
                "probs": np.concatenate([pr for _, pr, _, _ in window]).tolist(),
            }
        )
        sel = select(
            table,
            policy.budget,
            policy.strategy,
            s.audit_share,
            seed=world.seed * 100_003 + i,
            exclude=labeled_ids,
        )
        where = {r: n for n, r in enumerate(rids)}
        offsets = np.cumsum([0] + [len(pr) for _, pr, _, _ in window])
        picks = []
        for r, why in zip(sel.request_ids, sel.reasons, strict=True):
            n = where[r]
            g = int(np.searchsorted(offsets, n, side="right") - 1)
            picks.append((window[g][0], n - int(offsets[g]), why))
    return picks


def gated_decision(
    s: Settings,
    audit: list[bool],
    served: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    traffic: np.ndarray,
    champ_net,
    drift_ref: tuple[np.ndarray, ...],
    ref_conf: float,
    episode: Episode,
) -> tuple[TriggerDecision, Episode]:
    """`flows/retrain.py`'s `evaluate_triggers` on in-memory evidence: performance on the
    champion's audit labels, its confidence on the rows it served, drift of the last window
    of traffic vs its training rows (as `drift-check`), combined, then the drift episode."""
    decisions = [performance_trigger(audit[-s.window_labels :], s.accuracy_threshold, s.min_labels)]
    conf = np.concatenate([c for _, _, c in served])
    recent = conf[-s.window_rows :]
    decisions.append(
        confidence_trigger(
            ref_conf,
            float(recent.mean()),
            len(recent),
            s.confidence_drop,
            min_rows=min(100, s.window_rows),
        )
    )
    if s.on_drift and len(traffic) >= s.window_rows:
        # as `drift-check`: the last window of traffic vs a sample of the champion's
        # training rows, both scored by the champion
        cur = traffic[-s.window_rows :]
        cprobs = predict_proba(champ_net, cur.reshape(len(cur), 1, 8, 8))
        rf, rp, rc = drift_ref
        v = compute_drift(
            rf,
            cur,
            rp,
            cprobs.argmax(axis=1),
            rc,
            cprobs.max(axis=1),
            10,
            s.numeric_threshold,
            s.categorical_threshold,
            s.drift_share,
        )
        decisions.append(
            drift_trigger(v.dataset_drift, v.drift_share, v.confidence_drop, s.confidence_drop)
        )
    decision, episode = recovery_step(
        episode,
        combine(decisions),
        ref_conf,
        float(recent.mean()),
        len(recent),
        s.recovery_drop,
        min_rows=min(100, s.window_rows),
    )
    return decision, episode
