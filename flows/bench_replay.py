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

from evaluation.report_card import recent_mask
from flows.bench_steps import (
    Labeled,
    accuracy_on,
    card_decision,
    failed,
    gated_decision,
    pick_rows,
    training_reference,
)
from flows.bench_world import Settings, World, fit_epochs, reference_confidence
from retrain.dataset_policy import recency_weights
from retrain.digits.task import TASK
from retrain.model import load_module, predict_proba
from retrain.training import fit
from retrain.triggers import Episode
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


#: who answers the picked rows: (request ids, images (N, 1, 8, 8), champion probs (N, 10))
#: -> class indices. Default: the simulated annotator's rule, in process.
Labeler = Callable[[list[str], np.ndarray, np.ndarray], np.ndarray]


def replay(world: World, policy: Policy, s: Settings, labeler: Labeler | None = None) -> dict:
    """Replay the stream under `policy`; returns curves and events (JSON-able)."""
    t0 = time.perf_counter()
    champ_state, ref_conf = world.champion, world.reference_confidence
    champ_net = load_module(TASK, champ_state)
    champ_ids: set[str] = set(world.seed_ids)
    lab = Labeled(world)
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
        hacc.append(accuracy_on(champ_net, *world.heldout[i]))
        served.append((b.x.reshape(len(b.x), -1), pred, probs.max(axis=1)))
        traffic = np.concatenate([traffic, b.x.reshape(len(b.x), -1)])[-s.window_rows :]
        log.append((i, probs, pred, version))

        picks = pick_rows(world, log, policy, s, i, labeled_ids)
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
            decision, episode = gated_decision(
                s, audit, served, traffic, champ_net, drift_ref, ref_conf, episode
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
            gate, chall_net = card_decision(
                world, s, result.state_dict, champ_net, X[te], Y[te], attrs, recent
            )
            promote, why = gate.promote, failed(gate)
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
                g2, _ = card_decision(
                    world, s, bad.state_dict, champ_net, X[te], Y[te], attrs, recent
                )
                degraded.append({"batch": i, "promoted": g2.promote, "reasons": failed(g2)[:3]})
        else:
            chall_net, promote, why = load_module(TASK, result.state_dict), True, ["ungated"]
        if not promote:
            refusals.append({"batch": i, "reasons": why[:3]})
            continue
        before = hacc[-1]
        after = accuracy_on(chall_net, *world.heldout[i])
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
