"""`retrain`: trigger → dataset version → Lightning fit → report card → gate → promote or keep.

Every step's decision is explained (trigger reasons, gate reasons) and kept as state, so
`loopwright status` and the report card can say why. A failed gate changes nothing but
the `challenger` alias; promotion is one compare-and-swap on the registry file.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from evaluation.gate import GateRules, decide
from evaluation.report_card import (
    build_card,
    card_markdown,
    evaluate_model,
    recent_mask,
    write_card,
)
from flows.runtime import Runtime, open_runtime
from retrain.dataset_policy import SEED_SOURCE, recency_weights, select_rows
from retrain.training import finetune_epochs, fit
from retrain.triggers import (
    Episode,
    TriggerDecision,
    combine,
    confidence_trigger,
    drift_trigger,
    performance_trigger,
    periodic_trigger,
    recovery_step,
)
from storage.datasets import DatasetVersion, create_dataset
from storage.registry import AliasConflict
from storage.state import append_event, read_state, write_state


def evaluate_triggers(rt: Runtime, champion: str | None) -> tuple[TriggerDecision, Episode]:
    """Every rule on the champion's evidence, then the drift episode (see `recovery_step`).

    Returns the decision and the episode to store; the caller writes it, so that reading
    the triggers never changes state.
    """
    cfg = rt.cfg.trigger
    episode = Episode(**(read_state(rt.home, "trigger_episode") or {}))
    if champion is None:
        return TriggerDecision(
            True, "bootstrap", ("no champion yet: train the first one",), {}
        ), episode
    decisions = []
    outcomes = rt.queries.audit_outcomes(cfg.window_labels, model_version=champion)
    correct = np.asarray(outcomes.column("correct").to_pylist(), dtype=bool)
    decisions.append(performance_trigger(correct, cfg.accuracy_threshold, cfg.min_labels))
    reference = rt.registry.meta(champion).get("reference_confidence")
    recent = rt.queries.recent_predictions(
        rt.cfg.drift.window_rows, model_version=champion, columns=["confidence"]
    )
    conf = recent.column("confidence").to_numpy() if recent.num_rows else np.zeros(0)
    if reference is not None:
        decisions.append(
            confidence_trigger(
                float(reference),
                float(conf.mean()) if len(conf) else 0.0,
                len(conf),
                cfg.confidence_drop,
                min_rows=min(100, rt.cfg.drift.window_rows),
            )
        )
    drift = read_state(rt.home, "last_drift") or {}
    if (
        cfg.on_drift
        and drift.get("status") in {"ok", "drift"}
        and drift.get("champion") == champion
    ):
        decisions.append(
            drift_trigger(
                bool(drift["dataset_drift"]),
                float(drift["drift_share"]),
                float(drift["confidence_drop"]),
                cfg.confidence_drop,
            )
        )
    if cfg.every_rows:
        served = rt.queries.count_predictions(model_version=champion)
        decisions.append(periodic_trigger(served, cfg.every_rows))
    return recovery_step(
        episode,
        combine(decisions),
        reference,
        float(conf.mean()) if len(conf) else 0.0,
        len(conf),
        cfg.recovery_drop,
        min_rows=min(100, rt.cfg.drift.window_rows),
    )


def new_labels_since(rt: Runtime, champion: str | None, labeled: pa.Table) -> int:
    """Labeled rows the champion's own dataset did not contain: retraining without them is moot."""
    if champion is None:
        return labeled.num_rows
    from storage.datasets import load_dataset

    ds_id = rt.registry.meta(champion).get("dataset_version")
    seen: set[str] = set()
    if ds_id:
        ds = load_dataset(rt.home, ds_id)
        seen = set(ds.train_ids) | set(ds.test_ids)
    return sum(1 for r in labeled.column("request_id").to_pylist() if r not in seen)


def gate_rules(g) -> GateRules:
    """The `[gate]` section as the gate's rules (one place, so bench and flow agree)."""
    return GateRules(
        tolerance=g.tolerance,
        slice_tolerance=g.slice_tolerance,
        min_slice_rows=g.min_slice_rows,
        min_eval_rows=g.min_eval_rows,
        forget_tolerance=g.forget_tolerance,
        min_recent_rows=g.min_recent_rows,
        min_gain_z=g.min_gain_z,
    )


def example_times(table: pa.Table) -> np.ndarray:
    """Example `ts` as int64 microseconds; rows without one (seed rows) count as oldest."""
    ts = pc.cast(table.column("ts"), pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return pc.fill_null(ts, np.iinfo(np.int64).min).to_numpy()


def rows_for(labeled: pa.Table, ids: tuple[str, ...]) -> pa.Table:
    wanted = pa.array(list(ids), type=pa.string())
    return labeled.filter(pc.is_in(labeled.column("request_id"), value_set=wanted))


def xy(rt: Runtime, table: pa.Table) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    x = rt.task.decode_inputs(table.column("input").to_pylist())
    y = np.array(
        [rt.task.class_index(lbl) for lbl in table.column("label").to_pylist()], dtype=np.int64
    )
    attrs = [dict(a) if a else {} for a in table.column("attrs").to_pylist()]
    return x, y, attrs


@task(name="form-dataset", cache_policy=NO_CACHE)
def form_dataset(rt: Runtime, labeled: pa.Table, champion: str | None) -> DatasetVersion:
    cfg = rt.cfg.retrain
    rows = select_rows(labeled, cfg.dataset_policy, cfg.window_rows)
    params = {
        "window_rows": cfg.window_rows,
        "mode": cfg.mode,
        "recent_rows": cfg.recent_rows,
        "recent_weight": cfg.recent_weight,
    }
    return create_dataset(
        rt.home,
        rows,
        policy=cfg.dataset_policy,
        params=params,
        parent_model=champion,
        group_attr=cfg.split_group or None,
    )


@task(name="fit", cache_policy=NO_CACHE)
def train(rt: Runtime, ds: DatasetVersion, labeled: pa.Table, champion: str | None) -> str:
    cfg = rt.cfg.retrain
    rows = rows_for(labeled, ds.train_ids)
    x, y, _ = xy(rt, rows)
    weights = None
    if cfg.recent_weight > 1:
        is_seed = np.asarray(pc.fill_null(pc.equal(rows.column("source"), SEED_SOURCE), False))
        weights = recency_weights(example_times(rows), is_seed, cfg.recent_rows, cfg.recent_weight)
    init = None
    epochs = cfg.max_epochs
    if cfg.mode == "finetune" and champion is not None:
        init, _ = rt.registry.load(champion)
        epochs = finetune_epochs(len(y), cfg.fit_samples, cfg.finetune_epochs)
    result = fit(
        rt.task,
        x,
        y,
        init_state=init,
        max_epochs=epochs,
        batch_size=cfg.batch_size,
        lr=cfg.learning_rate,
        seed=cfg.seed,
        weights=weights,
    )
    # The label-free confidence trigger compares live traffic with this number.
    test_x, _, _ = xy(rt, rows_for(labeled, ds.test_ids))
    reference_confidence = None
    if len(test_x):
        from retrain.model import load_module, predict_proba

        probs = predict_proba(load_module(rt.task, result.state_dict), test_x)
        reference_confidence = float(probs.max(axis=1).mean())
    meta = {
        "task": rt.task.name,
        "classes": list(rt.task.classes),
        "dataset_version": ds.id,
        "parent": champion,
        "mode": cfg.mode if champion else "scratch",
        "reference_confidence": reference_confidence,
        "train": {
            "rows": result.n_train,
            "epochs": result.epochs,
            "loss": result.train_loss,
            "accuracy": result.train_accuracy,
            "seconds": result.seconds,
        },
    }
    version = rt.registry.register(result.state_dict, meta)
    rt.registry.set_alias("challenger", version, reason=f"trained on {ds.id}")
    return version


@task(name="report-card", cache_policy=NO_CACHE)
def report_card(
    rt: Runtime, ds: DatasetVersion, labeled: pa.Table, version: str, champion: str | None
) -> dict:
    test = rows_for(labeled, ds.test_ids)
    x, y, attrs = xy(rt, test)
    g = rt.cfg.gate
    recent = recent_mask(example_times(test), g.recent_rows)
    common = dict(
        recent=recent,
        x=x,
        y=y,
        attrs=attrs,
        classes=rt.task.classes,
        slice_keys=rt.task.slice_attrs,
        expectations=rt.task.expectations,
    )
    challenger = evaluate_model(
        name="challenger", version=version, predict_proba=rt.predictor(version), **common
    )
    incumbent = (
        evaluate_model(
            name="champion", version=champion, predict_proba=rt.predictor(champion), **common
        )
        if champion
        else None
    )
    card = build_card(
        challenger=challenger,
        champion=incumbent,
        task=rt.task.name,
        dataset={
            "id": ds.id,
            "policy": ds.policy,
            "n_train": len(ds.train_ids),
            "n_test": len(ds.test_ids),
        },
        eval_set={
            "description": f"held-out labeled rows of {ds.id} (stable hash split, never trained on)",
            "n": int(len(y)),
            "recent_rows": int(recent.sum()) if recent is not None else 0,
        },
        recent=recent,
    )
    decision = decide(card, gate_rules(g))
    card["gate"] = decision.to_dict()
    json_path, html_path = rt.home.cards / f"{version}.json", rt.home.cards / f"{version}.html"
    write_card(card, json_path, html_path)
    card["paths"] = {"json": str(json_path), "html": str(html_path)}
    return card


@task(name="promote-or-keep", cache_policy=NO_CACHE)
def promote_or_keep(rt: Runtime, version: str, champion: str | None, gate: dict) -> dict:
    if not gate["promote"]:
        return {"promoted": False, "champion": champion}
    try:
        rt.registry.set_alias(
            "champion",
            version,
            reason="gate passed: " + "; ".join(gate["reasons"])[:500],
            expected=champion,
        )
    except AliasConflict as exc:
        return {"promoted": False, "champion": rt.registry.get("champion"), "conflict": str(exc)}
    return {"promoted": True, "champion": version}


@flow(name="retrain", log_prints=True)
def retrain_flow(
    force: bool = False, reason: str = "", config_path: str | None = None, home: str | None = None
) -> dict:
    """Retrain when a trigger fires (or when forced), and promote only through the gate."""
    rt = open_runtime(config_path, home)
    now = datetime.now(UTC).isoformat()
    champion = rt.registry.get("champion")
    trigger, episode = evaluate_triggers(rt, champion)
    write_state(rt.home, "trigger_episode", asdict(episode))
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
    write_state(rt.home, "last_trigger", trig)
    print(
        f"trigger: {'FIRE' if trigger.fire else 'quiet'} ({trigger.kind}): {'; '.join(trigger.reasons)}"
    )
    if not trigger.fire:
        return {"retrained": False, "trigger": trig, "champion": champion}
    labeled = rt.queries.labeled_examples()
    fresh = new_labels_since(rt, champion, labeled)
    if champion is not None and fresh < rt.cfg.trigger.min_labels and not force:
        msg = f"only {fresh} labels the champion has not seen (< {rt.cfg.trigger.min_labels}): waiting for labels"
        print(msg)
        return {"retrained": False, "trigger": trig, "champion": champion, "waiting": msg}
    ds = form_dataset(rt, labeled, champion)
    version = train(rt, ds, labeled, champion)
    card = report_card(rt, ds, labeled, version, champion)
    outcome = promote_or_keep(rt, version, champion, card["gate"])
    gate = {
        **card["gate"],
        "challenger": version,
        "champion_before": champion,
        "champion_after": outcome["champion"],
        "card_html": card["paths"]["html"],
        "ts": now,
    }
    write_state(rt.home, "last_gate", gate)
    append_event(rt.home, "retrains", {"trigger": trig, "gate": gate, "dataset": ds.id})
    create_markdown_artifact(
        card_markdown(card), key="report-card", description=f"Report card {version}"
    )
    verdict = "PROMOTED" if outcome["promoted"] else "KEPT champion"
    print(
        f"{verdict}: challenger {version} vs champion {champion}; "
        + "; ".join(card["gate"]["reasons"])
    )
    print(f"report card: {card['paths']['html']}")
    return {
        "retrained": True,
        "trigger": trig,
        "dataset": ds.id,
        "challenger": version,
        "promoted": outcome["promoted"],
        "champion": outcome["champion"],
        "gate": gate,
    }
