"""The `retrain` stage: trigger → dataset version → fit → report card → gate → promote or keep.

Every step's decision is explained (trigger reasons, gate reasons) and kept as state
(`trigger_episode`, `last_trigger`, `last_gate`, the `retrains` event), so `loopwright status`
and the report card can say why. A failed gate changes nothing but the `challenger` alias;
promotion is one compare-and-swap on the registry file. The fit is seeded (`[retrain] seed`)
and runs on `[retrain] threads` threads: the same labels give the same model in every driver.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flows.loop.card import example_times, report_card, rows_for, xy
from flows.loop.hints import NO_LABELS, bootstrap_hint, no_champion_hint
from flows.loop.triggers import evaluate_triggers, new_labels_since
from retrain.dataset_policy import (
    SEED_SOURCE,
    eval_sides,
    recency_weights,
    row_kind,
    select_rows,
)
from retrain.label_shift import label_prior
from retrain.training import finetune_epochs, fit
from retrain.triggers import TriggerDecision
from storage.datasets import TEST_SHARE, DatasetVersion, create_dataset, split_key, split_of
from storage.eval_sets import EvalSet, composition, create_eval_set, latest_eval_set
from storage.registry import AliasConflict
from storage.state import append_event, write_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop


def audit_ids(loop: Loop) -> set[str]:
    """Request ids the curation queue picked as `audit` (its random share)."""
    queued = loop.queries.queued()
    if queued.num_rows == 0:
        return set()
    picked = queued.filter(pc.equal(queued.column("reason"), "audit"))
    return set(picked.column("request_id").to_pylist())


def _bucket(attrs: dict, source: str | None, ts) -> str:
    """The eval row's time bucket in the card: its batch when the stream says, else its day."""
    if attrs.get("batch") not in (None, ""):
        return f"batch {attrs['batch']}"
    if source == SEED_SOURCE or ts is None:
        return "seed"
    return ts.date().isoformat()


def form_eval_set(loop: Loop, labeled: pa.Table) -> tuple[EvalSet, set[str]]:
    """The next eval set version (`retrain.dataset_policy.eval_sides` decides each row), and
    the ids that may be in neither set (feedback rows of an eval group)."""
    cfg = loop.cfg.retrain
    group_attr = cfg.group_attr(loop.task.group_attr)
    parent = latest_eval_set(loop.home)
    ids = labeled.column("request_id").to_pylist()
    attrs = [dict(a) if a else {} for a in labeled.column("attrs").to_pylist()]
    srcs = labeled.column("source").to_pylist()
    audits = audit_ids(loop)
    kinds = [row_kind(s, rid in audits) for rid, s in zip(ids, srcs, strict=True)]
    keys = [split_key(rid, a, group_attr) for rid, a in zip(ids, attrs, strict=True)]
    in_test = [split_of(k) == "test" for k in keys]
    sides, new_groups = eval_sides(
        keys, kinds, dict(parent.groups) if parent else {}, in_test, cfg.audit_to_eval
    )
    before = set(parent.row_ids) if parent else set()
    labels = labeled.column("label").to_pylist()
    new = [i for i, (rid, side) in enumerate(zip(ids, sides, strict=True))
           if side == "eval" and rid not in before]  # fmt: skip
    every = before | {ids[i] for i in new}
    mine = [i for i, rid in enumerate(ids) if rid in every]
    ts = labeled.column("ts").to_pylist()
    comp = composition(
        [srcs[i] for i in mine],
        [kinds[i] for i in mine],
        [attrs[i] for i in mine],
        [_bucket(attrs[i], srcs[i], ts[i]) for i in mine],
        loop.task.slice_attrs,
    )
    params = {
        "group_attr": group_attr,
        "audit_to_eval": cfg.audit_to_eval,
        "test_share": TEST_SHARE,
    }
    ev = create_eval_set(
        loop.home, parent, [ids[i] for i in new], [labels[i] for i in new], new_groups, comp,
        params,
    )  # fmt: skip
    out = {rid for rid, side in zip(ids, sides, strict=True) if side == "out"} - every
    return ev, out


def form_dataset(loop: Loop, labeled: pa.Table, champion: str | None) -> DatasetVersion:
    """A new dataset version: the eval set's rows as its test side, and for training the
    labeled rows `[retrain] dataset_policy` keeps among those that are not eval rows."""
    cfg = loop.cfg.retrain
    ev, out = form_eval_set(loop, labeled)
    held = pa.array(sorted(set(ev.row_ids) | out), type=pa.string())
    pool = labeled.filter(pc.invert(pc.is_in(labeled.column("request_id"), value_set=held)))
    train_ids = select_rows(pool, cfg.dataset_policy, cfg.window_rows).column("request_id")
    keep = pa.concat_arrays([train_ids.combine_chunks().cast(pa.string()),
                             pa.array(list(ev.row_ids), type=pa.string())])  # fmt: skip
    rows = labeled.filter(pc.is_in(labeled.column("request_id"), value_set=keep))
    params = {
        "window_rows": cfg.window_rows,
        "mode": cfg.mode,
        "recent_rows": cfg.recent_rows,
        "recent_weight": cfg.recent_weight,
    }
    return create_dataset(
        loop.home,
        rows,
        policy=cfg.dataset_policy,
        params=params,
        parent_model=champion,
        group_attr=cfg.group_attr(loop.task.group_attr),
        eval_ids=ev.row_ids,
        eval_set=ev.id,
    )


def train(loop: Loop, ds: DatasetVersion, labeled: pa.Table, champion: str | None) -> str:
    """Fit on `ds`'s train rows (fine-tuning the champion when `[retrain] mode` says so),
    register the model with its validation confidence, and make it `challenger`."""
    cfg = loop.cfg.retrain
    rows = rows_for(labeled, ds.train_ids)
    x, y, _ = xy(loop, rows)
    weights = None
    if cfg.recent_weight > 1:
        is_seed = np.asarray(pc.fill_null(pc.equal(rows.column("source"), SEED_SOURCE), False))
        weights = recency_weights(example_times(rows), is_seed, cfg.recent_rows, cfg.recent_weight)
        if weights.min() == weights.max():  # no recent row (a seed-only first fit): plain
            weights = None  # shuffled epochs, each row once, not a uniform draw with replacement
    init = None
    epochs = cfg.max_epochs
    if cfg.mode == "finetune" and champion is not None:
        init, _ = loop.registry.load(champion)
        epochs = finetune_epochs(len(y), cfg.fit_samples, cfg.finetune_epochs)
    result = fit(
        loop.task,
        x,
        y,
        init_state=init,
        max_epochs=epochs,
        batch_size=cfg.batch_size,
        lr=cfg.learning_rate,
        seed=cfg.seed,
        weights=weights,
        threads=loop.threads,
    )
    # The label-free confidence trigger compares live traffic with this number.
    test_x, _, _ = xy(loop, rows_for(labeled, ds.test_ids))
    reference_confidence = None
    if len(test_x):
        from retrain.model import load_module, predict_proba

        module = load_module(loop.task, result.state_dict)
        probs = predict_proba(module, test_x, threads=loop.threads)
        reference_confidence = float(probs.max(axis=1).mean())
    meta = {
        "task": loop.task.name,
        "classes": list(loop.task.classes),
        "dataset_version": ds.id,
        "parent": champion,
        "mode": cfg.mode if champion else "scratch",
        "reference_confidence": reference_confidence,
        # the class mix its posteriors assume: what a label-shift correction divides by
        "train_prior": label_prior(y, len(loop.task.classes), weights),
        "train": {
            "rows": result.n_train,
            "epochs": result.epochs,
            "loss": result.train_loss,
            "accuracy": result.train_accuracy,
            "seconds": result.seconds,
        },
    }
    version = loop.registry.register(result.state_dict, meta)
    loop.registry.set_alias("challenger", version, reason=f"trained on {ds.id}")
    return version


def promote_or_keep(loop: Loop, version: str, champion: str | None, gate: dict) -> dict:
    """Move `champion` to `version` if the gate says so, by compare-and-swap (with
    `[rollout] enabled`: start its rollout as canary instead)."""
    if not gate["promote"]:
        return {"promoted": False, "champion": champion}
    if loop.cfg.rollout.enabled and champion is not None:  # online rollout, not at once
        from flows.loop.rollout import start_after_gate

        return start_after_gate(loop, version, champion)
    try:
        loop.registry.set_alias(
            "champion",
            version,
            reason="gate passed: " + "; ".join(gate["reasons"])[:500],
            expected=champion,
        )
    except AliasConflict as exc:
        return {"promoted": False, "champion": loop.registry.get("champion"), "conflict": str(exc)}
    return {"promoted": True, "champion": version}


def waiting_for_labels(loop: Loop, champion, labeled, force: bool) -> str | None:
    """Why a fired trigger cannot retrain yet (None: it can). Raises when forced with no
    labels at all: asked for a model, nothing to train on is an error."""
    if labeled.num_rows == 0:
        if force:
            raise ValueError(NO_LABELS)
        return NO_LABELS  # a scheduled check on a new home waits, it does not fail
    challenger = loop.registry.get("challenger")
    unjudged = champion is None and challenger is not None and not force
    if unjudged and new_labels_since(loop, challenger, labeled) == 0:
        # the first model was not promoted: the same rows would give the same verdict again
        return f"no labels since {challenger} was trained: {no_champion_hint(loop)}"
    fresh = new_labels_since(loop, champion, labeled)
    least = loop.cfg.trigger.min_labels
    if champion is not None and fresh < least and not force:
        return f"only {fresh} labels the champion has not seen (< {least}): waiting for labels"
    return None


def retrain(loop: Loop, force: bool = False, reason: str = "") -> dict:
    """Retrain when a trigger fires (or when forced), and promote only through the gate.

    Returns the flow's result: `{retrained: False, trigger, champion[, waiting]}`, or, after
    a fit, `{retrained: True, trigger, dataset, challenger, promoted, champion, gate, next}`.
    """
    now = datetime.now(UTC).isoformat()
    champion = loop.registry.get("champion")
    trigger, episode = evaluate_triggers(loop, champion)
    write_state(loop.home, "trigger_episode", asdict(episode))
    if force and not trigger.fire:
        trigger = TriggerDecision(
            True, "manual", (reason or "forced by the caller",), trigger.numbers
        )
    trig = {
        "fire": trigger.fire,
        "kind": trigger.kind,
        "reasons": list(trigger.reasons),
        "numbers": trigger.numbers,
        "champion": champion,
        "ts": now,
    }
    write_state(loop.home, "last_trigger", trig)
    if not trigger.fire:
        return {"retrained": False, "trigger": trig, "champion": champion}
    from flows.loop.online import busy

    rolling = None if force else busy(loop)  # no new candidate while one is rolled out
    if rolling is not None:
        return {"retrained": False, "trigger": trig, "champion": champion, "waiting": rolling}
    labeled = loop.queries.labeled_examples()
    wait = waiting_for_labels(loop, champion, labeled, force)
    if wait is not None:
        return {"retrained": False, "trigger": trig, "champion": champion, "waiting": wait}
    ds = loop.steps("form-dataset", form_dataset, loop, labeled, champion)
    if ds.n_train == 0:
        raise ValueError(
            f"all {ds.n_test} labeled rows of {ds.id} fall in its held-out test split, none is "
            "left to train on: add labeled rows (`loopwright seed --input FILE.parquet`)"
        )
    version = loop.steps("fit", train, loop, ds, labeled, champion)
    card = loop.steps("report-card", report_card, loop, ds, labeled, version, champion)
    loop.last_card = card  # for the flow's markdown artifact; not state
    outcome = loop.steps("promote-or-keep", promote_or_keep, loop, version, champion, card["gate"])
    hint = None
    if champion is None and not outcome["promoted"]:
        hint = bootstrap_hint(version, card, loop.cfg.gate.min_eval_rows)
    gate = {
        **card["gate"],
        "challenger": version,
        "champion_before": champion,
        "champion_after": outcome["champion"],
        "card_html": card["paths"]["html"],
        "ts": now,
        "next": hint,
    }
    write_state(loop.home, "last_gate", gate)
    append_event(loop.home, "retrains", {"trigger": trig, "gate": gate, "dataset": ds.id})
    return {
        "retrained": True,
        "trigger": trig,
        "dataset": ds.id,
        "challenger": version,
        "promoted": outcome["promoted"],
        "champion": outcome["champion"],
        "gate": gate,
        "next": hint,
        "rollout": outcome.get("rollout"),  # the rollout it started (None: none)
    }
