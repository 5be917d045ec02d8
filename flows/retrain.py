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

from evaluation.report_card import card_markdown
from flows.retrain_card import bootstrap_hint, example_times, report_card, rows_for, xy
from flows.retrain_triggers import evaluate_triggers, new_labels_since
from flows.runtime import Runtime, open_runtime
from retrain.dataset_policy import SEED_SOURCE, recency_weights, select_rows
from retrain.training import finetune_epochs, fit
from retrain.triggers import TriggerDecision
from storage.datasets import DatasetVersion, create_dataset
from storage.registry import AliasConflict
from storage.state import append_event, write_state

NO_LABELS = (
    "no labeled examples to train on: add some with `loopwright seed --input FILE.parquet` "
    "(columns request_id, input, label[, attrs]), or label curated samples (`loopwright "
    "curate`, then Label Studio, then `loopwright sync-labels`)"
)


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
    if labeled.num_rows == 0:
        if force:  # asked for a model: nothing to train on is an error
            raise ValueError(NO_LABELS)
        print(NO_LABELS)  # a scheduled check on a new home waits, it does not fail
        return {"retrained": False, "trigger": trig, "champion": champion, "waiting": NO_LABELS}
    challenger = rt.registry.get("challenger")
    unjudged = champion is None and challenger is not None and not force
    if unjudged and new_labels_since(rt, challenger, labeled) == 0:
        # the first model was not promoted: the same rows would give the same verdict again
        from flows.status import no_champion_hint

        msg = f"no labels since {challenger} was trained: {no_champion_hint(rt)}"
        print(msg)
        return {"retrained": False, "trigger": trig, "champion": None, "waiting": msg}
    fresh = new_labels_since(rt, champion, labeled)
    if champion is not None and fresh < rt.cfg.trigger.min_labels and not force:
        msg = f"only {fresh} labels the champion has not seen (< {rt.cfg.trigger.min_labels}): waiting for labels"
        print(msg)
        return {"retrained": False, "trigger": trig, "champion": champion, "waiting": msg}
    ds = form_dataset(rt, labeled, champion)
    if ds.n_train == 0:
        raise ValueError(
            f"all {ds.n_test} labeled rows of {ds.id} fall in its held-out test split, none is "
            "left to train on: add labeled rows (`loopwright seed --input FILE.parquet`)"
        )
    version = train(rt, ds, labeled, champion)
    card = report_card(rt, ds, labeled, version, champion)
    outcome = promote_or_keep(rt, version, champion, card["gate"])
    hint = None
    if champion is None and not outcome["promoted"]:
        hint = bootstrap_hint(version, card, rt.cfg.gate.min_eval_rows)
    gate = {
        **card["gate"],
        "challenger": version,
        "champion_before": champion,
        "champion_after": outcome["champion"],
        "card_html": card["paths"]["html"],
        "ts": now,
        "next": hint,
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
    if hint:
        print(hint)
    return {
        "retrained": True,
        "trigger": trig,
        "dataset": ds.id,
        "challenger": version,
        "promoted": outcome["promoted"],
        "champion": outcome["champion"],
        "gate": gate,
        "next": hint,
    }
