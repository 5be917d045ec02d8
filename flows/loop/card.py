"""The `report-card` step of retrain: challenger vs champion on held-out rows, then the gate.

Also the helpers that turn labeled rows into model inputs, shared with the `fit` step. The
gate is `evaluation.gate.decide` with `[gate]` as its rules. A loop without artifacts (the
benchmark) times no latency and writes no card files; the card's numbers and the verdict
are the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evaluation.gallery import build_gallery
from evaluation.gate import decide
from evaluation.report_card import build_card, evaluate_model, recent_mask, write_card
from evaluation.suites import run_suites
from flows.loop.cohorts import as_slices
from retrain.dataset_policy import SEED_SOURCE
from storage.datasets import DatasetVersion
from storage.suites import list_suites

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

#: rows the card times one prediction on (its latency figure); none when artifacts are off
LATENCY_ROWS = 64


def example_times(table: pa.Table) -> np.ndarray:
    """Example `ts` as int64 microseconds; rows without one (seed rows) count as oldest."""
    ts = pc.cast(table.column("ts"), pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return pc.fill_null(ts, np.iinfo(np.int64).min).to_numpy()


def rows_for(labeled: pa.Table, ids: tuple[str, ...]) -> pa.Table:
    wanted = pa.array(list(ids), type=pa.string())
    return labeled.filter(pc.is_in(labeled.column("request_id"), value_set=wanted))


def xy(loop: Loop, table: pa.Table) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    task = loop.task
    x = loop.decode_inputs(table.column("input").to_pylist())
    y = np.array([task.class_index(lbl) for lbl in table.column("label").to_pylist()],
                 dtype=np.int64)  # fmt: skip
    attrs = [dict(a) if a else {} for a in table.column("attrs").to_pylist()]
    return x, y, attrs


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
    text = (
        f"eval rows of {ds_id} (its eval set version: audit labels, seed rows by hash, grouped "
        f"by source; never trained on; {where})"
    )
    if champion is None:
        text += (
            f"; no champion yet, so this first model is judged alone: at least {min_eval_rows} "
            "eval rows ([gate] min_eval_rows) and its task's expectations"
        )
        if n < min_eval_rows:
            text += f"; {n} rows are too few for the gate to judge it"
    return text


def eval_version(loop: Loop, ds: DatasetVersion) -> dict:
    """The eval set version `ds` was split by: its id, parent, created time and composition
    (empty for a dataset made by a hash split, before eval sets existed)."""
    if not ds.eval_set:
        return {}
    from storage.eval_sets import load_eval_set

    return load_eval_set(loop.home, ds.eval_set).summary()


def suite_rows(loop: Loop, labeled: pa.Table, ids) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A suite's rows among the labeled examples: (request ids, model inputs, class indices)."""
    rows = rows_for(labeled, tuple(ids))
    if rows.num_rows == 0:
        return [], np.zeros((0,)), np.zeros(0, np.int64)
    x, y, _ = xy(loop, rows)
    return rows.column("request_id").to_pylist(), x, y


def report_card(
    loop: Loop, ds: DatasetVersion, labeled: pa.Table, version: str, champion: str | None
) -> dict:
    """The card of `version` (vs `champion`) on `ds`'s held-out rows, with the gate's verdict
    under "gate" and where its files are under "paths" (None without artifacts). The champion
    is judged as it is served (its label-shift correction applied, if any): a challenger must
    beat what users get, not the raw model behind it."""
    test = rows_for(labeled, ds.test_ids)
    x, y, attrs = xy(loop, test)
    # `[[cohort]]` members are slices `cohort:<name>` = "in" (flows/loop/cohorts.py)
    attrs = as_slices(loop, attrs, test.column("request_id").to_pylist())
    keys = [*loop.task.slice_attrs, *(c.slice_key for c in loop.cfg.cohorts)]
    g = loop.cfg.gate
    not_seed = [s != SEED_SOURCE for s in test.column("source").to_pylist()]
    recent = recent_mask(example_times(test), g.recent_rows, not_seed)
    common = dict(
        recent=recent,
        x=x,
        y=y,
        attrs=attrs,
        classes=loop.task.classes,
        slice_keys=keys,
        expectations=loop.task.expectations,
        latency_rows=LATENCY_ROWS if loop.artifacts else 0,
    )
    challenger = evaluate_model(
        name="challenger", version=version, predict_proba=loop.predictor(version), **common
    )
    incumbent = (
        evaluate_model(
            name="champion",
            version=champion,
            predict_proba=loop.served_predictor(champion),
            **common,
        )
        if champion
        else None
    )
    card = build_card(
        challenger=challenger,
        champion=incumbent,
        task=loop.task.name,
        dataset={
            "id": ds.id,
            "policy": ds.policy,
            "n_train": len(ds.train_ids),
            "n_test": len(ds.test_ids),
        },
        eval_set={
            **eval_version(loop, ds),
            "description": eval_description(ds.id, test, champion, g.min_eval_rows, len(y)),
            "n": int(len(y)),
            "recent_rows": int(recent.sum()) if recent is not None else 0,
            "regression_rows": int((~recent).sum()) if recent is not None else 0,
            "sources": sources(test),
        },
        # the model's own registration time: a card is about one immutable version
        created=loop.registry.meta(version).get("created"),
        recent=recent,
        row_ids=test.column("request_id").to_pylist(),
        slice_rows={k: [a.get(k) for a in attrs] for k in keys},
    )
    # edge-case suites (storage/suites.py) run on every card; the gate reads the required ones
    card["suites"] = run_suites(
        [s.to_dict() for s in list_suites(loop.home)],
        lambda ids: suite_rows(loop, labeled, ids),
        loop.predictor(version),
        loop.served_predictor(champion) if champion else None,
        train_ids=ds.train_ids,
    )
    if loop.artifacts:  # inputs a reviewer looks at (the benchmark writes no card)
        card["gallery"] = build_gallery(
            test.column("request_id").to_pylist(),
            test.column("input").to_pylist(),
            y,
            loop.predictor(version)(x),
            loop.served_predictor(champion)(x) if champion else None,
            loop.task.classes,
            loop.task.render,
        )
    card["gate"] = decide(card, g).to_dict()
    if not loop.artifacts:
        card["paths"] = {"json": None, "html": None}
        return card
    json_path, html_path = loop.home.cards / f"{version}.json", loop.home.cards / f"{version}.html"
    write_card(card, json_path, html_path)
    card["paths"] = {"json": str(json_path), "html": str(html_path)}
    return card
