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


#: share of labeled rows `storage.datasets.create_dataset` holds out (its default)
TEST_SHARE = 0.2


def sources(test: pa.Table) -> dict[str, int]:
    """Eval rows per label source (seed, labelstudio, feedback)."""
    if "source" not in test.column_names:
        return {}
    counts = pc.value_counts(pc.fill_null(test.column("source"), "unknown"))
    return {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}


def eval_description(
    ds_id: str, test: pa.Table, champion: str | None, min_eval_rows: int, n: int
) -> str:
    """What the card's models were judged on, in words; for a first model also what the gate
    can and cannot judge without a champion to compare with."""
    where = ", ".join(f"{k} {v}" for k, v in sorted(sources(test).items())) or "none"
    text = f"held-out labeled rows of {ds_id} (stable hash split, never trained on; {where})"
    if champion is None:
        text += (
            f"; no champion yet, so this first model is judged alone: at least {min_eval_rows} "
            "eval rows ([gate] min_eval_rows) and its task's expectations"
        )
        if n < min_eval_rows:
            text += f"; {n} rows are too few for the gate to judge it"
    return text


def bootstrap_hint(version: str, card: dict, min_eval_rows: int) -> str:
    """The way on when the first model was not promoted: why, and the two ways forward
    (promote it by hand, recorded with its reason; or more labeled rows and retrain)."""
    failed = [c for c in card["gate"]["checks"] if not c["passed"]]
    n = int(card["eval_set"]["n"])
    if any(c["name"] == "eval_rows" for c in failed):
        total = int(np.ceil(min_eval_rows / TEST_SHARE))
        why = (
            f"its eval set has {n} held-out rows, fewer than [gate] min_eval_rows = "
            f"{min_eval_rows}, so the gate cannot judge it"
        )
        more = (
            f"or add labeled rows (about {total} in all hold out {min_eval_rows}) with "
            "`loopwright seed --input FILE.parquet` and run `loopwright retrain` again"
        )
    else:
        why = "the gate refused it: " + "; ".join(c["detail"] for c in failed)
        more = "or fix what the gate names and run `loopwright retrain` again"
    return (
        f"{version} is registered as challenger, and there is no champion yet: {why}. "
        f'If you trust it, promote it: `loopwright promote {version} --reason "..."` '
        f"(recorded in the alias history), {more}."
    )


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
            "description": eval_description(ds.id, test, champion, g.min_eval_rows, len(y)),
            "n": int(len(y)),
            "recent_rows": int(recent.sum()) if recent is not None else 0,
            "sources": sources(test),
        },
        recent=recent,
    )
    decision = decide(card, gate_rules(g))
    card["gate"] = decision.to_dict()
    json_path, html_path = rt.home.cards / f"{version}.json", rt.home.cards / f"{version}.html"
    write_card(card, json_path, html_path)
    card["paths"] = {"json": str(json_path), "html": str(html_path)}
    return card
