"""One policy replayed over one seed's stream, in memory, with the loop's own decision code.

Why in memory: the flows keep every step in Parquet, Label Studio and the registry, which
is right for production and far too slow for 5 policies x 5 seeds x 30-120 batches. The
decisions are the same functions the flows call, wired the way `flows/retrain.py` and the
demo wire them: curation `select`, `performance/confidence/drift_trigger` + `combine`,
`select_rows`, the hash split `split_of`, `fit` from the champion, `evaluate_model` +
`build_card` + gate `decide`. What is replaced is storage (lists instead of Parquet) and
people (the simulated annotator's rule, called in-process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curation.drift import compute_drift
from curation.sampling import select
from evaluation.gate import GateRules, decide
from evaluation.report_card import build_card, evaluate_model, recent_mask
from flows.bench_world import Settings, World, fit_epochs, reference_confidence
from retrain.dataset_policy import recency_weights, select_rows
from retrain.digits.task import TASK
from retrain.model import load_module, predict_proba
from retrain.training import fit
from retrain.triggers import (
    Episode,
    combine,
    confidence_trigger,
    drift_trigger,
    performance_trigger,
    recovery_step,
)
from storage.datasets import split_key, split_of

KINDS = ("static", "periodic-random", "loop-random", "loop-uncertainty", "oracle")


@dataclass(frozen=True)
class Policy:
    kind: str
    budget: int  # labels asked per batch (oracle: the whole batch, static: 0)

    @property
    def name(self) -> str:
        return self.kind if self.kind in ("static", "oracle") else f"{self.kind}@{self.budget}"

    @property
    def strategy(self) -> str:
        return "random" if self.kind in ("periodic-random", "loop-random") else "margin"


class _Labeled:
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


def _card_decision(world, s, chall_state, champ_net, x, y, attrs, recent=None):
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


def _failed(gate) -> list[str]:
    return [c["detail"] for c in gate.checks if not c["passed"]]


def _accuracy(net, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict_proba(net, x).argmax(axis=1) == y).mean())


#: who answers the picked rows: (request ids, images (N, 1, 8, 8), champion probs (N, 10))
#: -> class indices. Default: the simulated annotator's rule, in process.
Labeler = Callable[[list[str], np.ndarray, np.ndarray], np.ndarray]


def replay(world: World, policy: Policy, s: Settings, labeler: Labeler | None = None) -> dict:
    """Replay the stream under `policy`; returns curves and events (JSON-able)."""
    t0 = time.perf_counter()
    champ_state, ref_conf = world.champion, world.reference_confidence
    champ_net = load_module(TASK, champ_state)
    champ_ids: set[str] = set(world.seed_ids)
    lab = _Labeled(world)
    served: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # by the current champion
    audit: list[bool] = []  # audit outcomes of the current champion
    acc, hacc, cum, total = [], [], [], 0
    triggers, kinds, retrains, promotions, degraded, fit_s = [], [], [], [], [], 0.0
    refusals: list[dict] = []
    split_cache: dict[str, bool] = {}
    gated = policy.kind in ("loop-random", "loop-uncertainty")

    log: list[tuple[int, np.ndarray, np.ndarray, int]] = []  # (batch, probs, pred, version)
    version, episode = 0, Episode()
    seed_train = np.array([split_of(r, s.test_share) == "train" for r in world.seed_ids])
    drift_ref = training_reference(champ_net, world.seed_x[seed_train], s.reference_rows)
    traffic = np.zeros((0, 64), dtype=np.float32)  # every served row, as drift features
    labeled_ids: set[str] = set()
    for b in world.batches:
        i = b.index
        probs = predict_proba(champ_net, b.x)
        pred = probs.argmax(axis=1)
        # measured before any label of this batch exists: no row of it was ever labeled
        acc.append(float((pred == b.y).mean()))
        hacc.append(_accuracy(champ_net, *world.heldout[i]))
        served.append((b.x.reshape(len(b.x), -1), pred, probs.max(axis=1)))
        traffic = np.concatenate([traffic, b.x.reshape(len(b.x), -1)])[-s.window_rows :]
        log.append((i, probs, pred, version))

        if policy.kind == "static":
            picks: list[tuple[int, int, str]] = []
        elif policy.kind == "oracle":
            picks = [(i, k, "all") for k in range(len(b.y))]
        else:
            # candidates: the recent batches' logged predictions (the flow's candidate window)
            window = log[-s.candidate_batches :]
            rids = [
                world.batches[j].request_ids[k] for j, pr, _, _ in window for k in range(len(pr))
            ]
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
        if picks:
            ids = [world.batches[j].request_ids[k] for j, k, _ in picks]
            xs = np.stack([world.batches[j].x[k] for j, k, _ in picks])
            if labeler is None:
                y_lab = world.label(ids)
            else:
                y_lab = labeler(ids, xs, np.stack([log[j][1][k] for j, k, _ in picks]))
            lab.add(ids, xs, y_lab, i, [world.batches[j].attrs[k] for j, k, _ in picks])
            labeled_ids.update(ids)
            for (j, k, why), yl in zip(picks, y_lab, strict=True):
                _, _, pr, ver = log[j]
                if why == "audit" and ver == version:
                    audit.append(bool(pr[k] == yl))
            total += len(picks)
        cum.append(total)

        fresh = sum(1 for r in lab.ids if r not in champ_ids)
        if gated:
            decisions = [
                performance_trigger(audit[-s.window_labels :], s.accuracy_threshold, s.min_labels)
            ]
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
                    drift_trigger(
                        v.dataset_drift, v.drift_share, v.confidence_drop, s.confidence_drop
                    )
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
            fire, kind = decision.fire, decision.kind
            if fire:
                triggers.append(i)
                kinds.append(kind)
            go = fire and fresh >= s.min_labels
        elif policy.kind == "periodic-random":
            go = (i + 1) % s.periodic_every == 0 and fresh > 0
        else:
            go = policy.kind == "oracle"
        if not go:
            continue

        rows = lab.dataset(s.dataset_policy, 2000)
        X, Y = lab.arrays()
        is_train = np.array(
            [
                split_cache.setdefault(
                    lab.ids[k],
                    split_of(split_key(lab.ids[k], lab.attrs[k], s.split_group), s.test_share)
                    == "train",
                )
                for k in rows
            ]
        )
        tr, te = rows[is_train], rows[~is_train]
        epochs = fit_epochs(len(tr), s)
        t1 = time.perf_counter()
        ts_all, seed_all = np.asarray(lab.ts), np.asarray(lab.source) == "seed"
        weights = recency_weights(ts_all[tr], seed_all[tr], s.recent_rows, s.recent_weight)
        result = fit(
            TASK,
            X[tr],
            Y[tr],
            init_state=champ_state,
            max_epochs=epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            seed=world.seed * 1000 + i,
            weights=None if s.recent_weight == 1 else weights,
        )
        fit_s += time.perf_counter() - t1
        retrains.append(i)
        attrs = [lab.attrs[k] for k in te]
        recent = recent_mask(np.asarray(lab.ts)[te], s.gate_recent_rows)
        if gated:
            gate, chall_net = _card_decision(
                world, s, result.state_dict, champ_net, X[te], Y[te], attrs, recent
            )
            promote, why = gate.promote, _failed(gate)
            if policy.kind == "loop-uncertainty" and len(degraded) < s.degraded_checks:
                shuffled = np.random.default_rng(i).permutation(Y[tr])
                bad = fit(
                    TASK,
                    X[tr],
                    shuffled,
                    init_state=champ_state,
                    max_epochs=epochs,
                    batch_size=s.batch_size,
                    lr=s.lr,
                    seed=world.seed * 1000 + i,
                )
                g2, _ = _card_decision(
                    world, s, bad.state_dict, champ_net, X[te], Y[te], attrs, recent
                )
                degraded.append({"batch": i, "promoted": g2.promote, "reasons": _failed(g2)[:3]})
        else:
            chall_net, promote, why = load_module(TASK, result.state_dict), True, ["ungated"]
        if not promote:
            refusals.append({"batch": i, "reasons": why[:3]})
            continue
        before = hacc[-1]
        after = _accuracy(chall_net, *world.heldout[i])
        promotions.append(
            {
                "batch": i,
                "heldout_before": before,
                "heldout_after": after,
                "delta": after - before,
                "reasons": why[:3],
            }
        )
        drift_ref = training_reference(chall_net, X[tr], s.reference_rows)
        champ_state, champ_net = result.state_dict, chall_net
        version += 1
        ref_conf = reference_confidence(champ_state, X[te]) if len(te) else ref_conf
        champ_ids = {lab.ids[k] for k in rows}
        served, audit = [], []

    return {
        "policy": policy.name,
        "kind": policy.kind,
        "budget": policy.budget,
        "seed": world.seed,
        "accuracy": acc,
        "heldout_accuracy": hacc,
        "labels_cumulative": cum,
        "labels_spent": total,
        "trigger_batches": triggers,
        "trigger_kinds": kinds,
        "retrain_batches": retrains,
        "promotions": promotions,
        "refusals": refusals,
        "degraded": degraded,
        "seconds": round(time.perf_counter() - t0, 2),
        "fit_seconds": round(fit_s, 2),
    }
