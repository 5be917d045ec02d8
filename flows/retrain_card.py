"""The `report-card` task of `retrain`: challenger vs champion on held-out rows, then the gate.

Also the helpers that turn labeled rows into model inputs, shared with the `fit` task.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NO_CACHE

from evaluation.gate import GateRules, decide
from evaluation.report_card import build_card, evaluate_model, recent_mask, write_card
from flows.runtime import Runtime
from storage.datasets import DatasetVersion


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
