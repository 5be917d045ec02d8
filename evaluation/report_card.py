"""The report card: challenger and champion side by side, as JSON, HTML and Markdown.

Why a card: promotion is a decision a person must be able to audit after the fact. The
card holds every number the gate looks at (and more: calibration, latency, per class),
and the gate adds its verdict under the ``"gate"`` key; the card itself decides nothing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.card_html import render_html
from evaluation.card_markdown import card_markdown
from evaluation.expectations import run_expectations
from evaluation.latency import measure_latency
from evaluation.metrics import (
    _labels,
    accuracy,
    expected_calibration_error,
    macro_f1,
    per_class,
    reliability_bins,
    wilson_interval,
)
from evaluation.slices import slice_metrics
from retrain.task import Expectation, ExpectationResult, PredictProba

__all__ = ["ModelEval", "build_card", "card_markdown", "evaluate_model", "write_card"]

#: version of the card's JSON layout; bump it when a key changes meaning
CARD_SCHEMA = "loopwright.report_card/1"


@dataclass(frozen=True)
class ModelEval:
    """Everything measured about one model on the eval set (no comparison, no verdict)."""

    name: str  # "challenger" or "champion"
    version: str | None
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    slices: dict[str, dict[str, dict[str, Any]]]
    ece: float
    reliability: list[dict[str, Any]]
    expectations: tuple[ExpectationResult, ...]
    latency: dict[str, float]
    #: metrics on the newest eval rows only (see `evaluate_model(recent=...)`), or None
    recent: dict[str, float] | None = None
    #: per-row hit (prediction == label), for the paired comparison; not written to the card
    hits: tuple[bool, ...] = ()


def evaluate_model(
    *,
    name: str,
    version: str | None,
    predict_proba: PredictProba,
    x: np.ndarray,
    y: np.ndarray,
    attrs: Sequence[Mapping[str, str | None]] | None,
    classes: Sequence[str],
    slice_keys: Sequence[str],
    expectations: Sequence[Expectation],
    latency_rows: int = 64,
    recent: Sequence[bool] | np.ndarray | None = None,
) -> ModelEval:
    """Score one model on (x, y): metrics, slices, calibration, expectations, latency.

    `y` holds class indices in the order of `classes`. Latency is timed on the first
    `latency_rows` inputs (0 skips it), so the card stays cheap on large eval sets.
    `recent` marks the eval rows that stand for today's traffic (the newest ones): under
    drift the whole eval set is mostly yesterday's world, and the gate needs both views.
    """
    n_classes = len(classes)
    y_arr = _labels("y", y, n_classes)
    x = np.asarray(x)
    if x.shape[0] != y_arr.size:
        raise ValueError(f"x has {x.shape[0]} rows, y has {y_arr.size}: pass one label per input")
    probs = np.asarray(predict_proba(x))
    if probs.shape != (y_arr.size, n_classes):
        raise ValueError(
            f"predict_proba returned shape {probs.shape} for {name}, expected "
            f"({y_arr.size}, {n_classes}): it must give one probability per class of the task"
        )
    y_pred = probs.argmax(axis=1)
    hits = y_pred == y_arr
    recent_metrics = None
    if recent is not None:
        mask = np.asarray(recent, dtype=bool)
        if mask.shape != hits.shape:
            raise ValueError(
                f"recent has {mask.size} flags for {hits.size} eval rows: pass one flag per row"
            )
        recent_metrics = {
            "n": int(mask.sum()),
            "accuracy": float(hits[mask].mean()) if mask.any() else float("nan"),
        }
    slices = slice_metrics(y_arr, y_pred, attrs, slice_keys) if attrs is not None else {}
    latency = measure_latency(predict_proba, x[:latency_rows]) if latency_rows > 0 else {}
    return ModelEval(
        name=name,
        version=version,
        n=int(y_arr.size),
        accuracy=accuracy(y_arr, y_pred),
        macro_f1=macro_f1(y_arr, y_pred, n_classes),
        per_class=per_class(y_arr, y_pred, classes),
        slices=slices,
        ece=expected_calibration_error(probs, y_arr),
        reliability=reliability_bins(probs, y_arr),
        expectations=tuple(run_expectations(expectations, predict_proba, x, y_arr)),
        latency=latency,
        recent=recent_metrics,
        hits=tuple(bool(h) for h in hits),
    )


def recent_mask(
    ts: Sequence[Any] | np.ndarray, n: int, eligible: Sequence[bool] | np.ndarray | None = None
) -> np.ndarray | None:
    """Flags for the `n` newest rows by `ts` (later rows win ties) among the `eligible` ones
    (default all); None when n is 0 (off). The loop passes "not a seed row": the seed is the
    first champion's past, never today's traffic, however small the eval set still is.

    >>> recent_mask([3, 1, 2, 3], 2).tolist()
    [True, False, False, True]
    >>> recent_mask([3, 1, 2, 3], 2, [True, True, True, False]).tolist()
    [True, False, True, False]
    """
    if n <= 0:
        return None
    ts = np.asarray(ts)
    ok = np.ones(len(ts), bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if ok.shape != ts.shape:
        raise ValueError(f"eligible has {ok.size} flags for {ts.size} rows: one per row")
    order = [i for i in np.argsort(ts, kind="stable") if ok[i]]
    mask = np.zeros(len(ts), dtype=bool)
    mask[order[-n:]] = True
    return mask


def _counts(ch: np.ndarray, cp: np.ndarray, m: np.ndarray) -> dict[str, Any]:
    b, c = int((ch & ~cp & m).sum()), int((cp & ~ch & m).sum())
    return {
        "n": int(m.sum()),
        "challenger_only": b,
        "champion_only": c,
        "z": (b - c) / float(np.sqrt(b + c)) if b + c else 0.0,
    }


def paired(
    challenger: ModelEval,
    champion: ModelEval,
    recent: Sequence[bool] | None,
    slice_rows: Mapping[str, Sequence[str | None]] | None = None,
) -> dict:
    """Rows only one of the two models gets right: on all rows, the recent view, the
    regression view (the rest) and each slice (`slice_rows`: per slice attr, each row's value).

    Why paired: both models answer the same rows, so what separates them is only the rows
    where they disagree on correctness; the gate's exact tests (`evaluation.paired`) read
    these counts, which two separate accuracies cannot give.
    """
    ch, cp = np.asarray(challenger.hits, bool), np.asarray(champion.hits, bool)
    out: dict[str, Any] = {"all": _counts(ch, cp, np.ones(ch.size, bool))}
    if recent is not None:
        mask = np.asarray(recent, dtype=bool)
        out["recent"] = _counts(ch, cp, mask)
        out["regression"] = _counts(ch, cp, ~mask)
    slices: dict[str, dict[str, Any]] = {}
    for key, values in (slice_rows or {}).items():
        if len(values) != ch.size:
            raise ValueError(
                f"slice_rows[{key!r}] has {len(values)} values for {ch.size} rows: one per row"
            )
        col = np.array([None if v is None else str(v) for v in values], dtype=object)
        for value in sorted({v for v in col if v is not None}):
            slices.setdefault(key, {})[value] = _counts(ch, cp, col == value)
    out["slices"] = slices
    return out


def _jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, tuples as lists, NaN/inf as None."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _model_dict(m: ModelEval) -> dict[str, Any]:
    d = _jsonable(m)
    d.pop("hits", None)
    d["accuracy_ci"] = list(wilson_interval(round(m.accuracy * m.n), m.n))
    return d


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else float(a - b)


def _deltas(ch: ModelEval, cp: ModelEval) -> dict[str, Any]:
    per_cls = {
        cls: {k: _delta(v[k], cp.per_class[cls][k]) for k in ("precision", "recall", "f1")}
        for cls, v in ch.per_class.items()
        if cls in cp.per_class
    }
    slices: dict[str, dict[str, Any]] = {}
    for key, values in ch.slices.items():
        for value, s in values.items():
            other = cp.slices.get(key, {}).get(value)
            if other is not None:
                slices.setdefault(key, {})[value] = {
                    "accuracy": _delta(s["accuracy"], other["accuracy"]),
                    "n_challenger": s["n"],
                    "n_champion": other["n"],
                }
    return {
        "accuracy": _delta(ch.accuracy, cp.accuracy),
        "macro_f1": _delta(ch.macro_f1, cp.macro_f1),
        "ece": _delta(ch.ece, cp.ece),
        "p50_ms": _delta(ch.latency.get("p50_ms"), cp.latency.get("p50_ms")),
        "per_class": per_cls,
        "slices": slices,
    }


def build_card(
    *,
    challenger: ModelEval,
    champion: ModelEval | None,
    task: str,
    dataset: Mapping[str, Any],
    eval_set: Mapping[str, Any],
    created: str | None = None,
    recent: Sequence[bool] | None = None,
    row_ids: Sequence[str] | None = None,
    slice_rows: Mapping[str, Sequence[str | None]] | None = None,
) -> dict[str, Any]:
    """A JSON-able card: both models, and deltas (challenger - champion) when there is one.

    `dataset` describes what the challenger trained on (id, policy, n_train, n_test);
    `eval_set` what both were scored on (description, n; n defaults to the rows scored).
    `created` is passed in rather than read from the clock, so the same inputs give the
    same card. Both models must have been scored on the same eval set; `recent` is the
    mask both were given (it adds the paired comparison on those rows and the rest),
    `slice_rows` each row's value per slice attr (paired counts per slice). `row_ids` name
    the rows: the card then lists each row's correctness per model under "rows", so a
    reviewer (or another test) can redo the paired comparison.
    """
    if champion is not None and champion.n != challenger.n:
        raise ValueError(
            f"champion was scored on {champion.n} rows, challenger on {challenger.n}: "
            "evaluate both models on the same eval set"
        )
    eval_info = dict(eval_set)
    eval_info.setdefault("n", challenger.n)
    if eval_info["n"] != challenger.n:
        raise ValueError(
            f"eval_set n = {eval_info['n']} but the models were scored on {challenger.n} rows: "
            "pass the eval set the models were scored on"
        )
    return _jsonable(
        {
            "schema": CARD_SCHEMA,
            "task": task,
            "created": created,
            "dataset": dict(dataset),
            "eval_set": eval_info,
            "models": {
                "challenger": _model_dict(challenger),
                "champion": _model_dict(champion) if champion is not None else None,
            },
            "deltas": _deltas(challenger, champion) if champion is not None else None,
            "paired": (
                paired(challenger, champion, recent, slice_rows)
                if champion is not None and challenger.hits and champion.hits
                else None
            ),
            "rows": _rows(challenger, champion, recent, row_ids),
        }
    )


def _rows(
    challenger: ModelEval,
    champion: ModelEval | None,
    recent: Sequence[bool] | None,
    row_ids: Sequence[str] | None,
) -> dict[str, Any] | None:
    """Per eval row: its id, whether each model got it right, whether it is a recent row."""
    if row_ids is None or not challenger.hits:
        return None
    if len(row_ids) != challenger.n:
        raise ValueError(f"{len(row_ids)} row_ids for {challenger.n} eval rows: one id per row")
    return {
        "request_id": list(row_ids),
        "challenger_hit": [int(h) for h in challenger.hits],
        "champion_hit": [int(h) for h in champion.hits] if champion and champion.hits else None,
        "recent": [int(r) for r in recent] if recent is not None else None,
    }


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary name, then rename: a reader never sees half a card."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_card(card: dict[str, Any], json_path: Path, html_path: Path) -> None:
    """Write the card as JSON (for machines) and as one self-contained HTML page (for people).

    The HTML has inline CSS and SVG only, no scripts and no external URLs, so it opens
    offline, from an artifact store or attached to an email.
    """
    data = json.dumps(_jsonable(card), indent=2, allow_nan=False)
    _write_atomic(Path(json_path), data + "\n")
    _write_atomic(Path(html_path), render_html(card))
