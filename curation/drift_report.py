"""Evidently 0.7 adapter: a drift report (HTML + JSON) for people, on a sample.

Why a sample: Evidently takes ~100 s and 1.6 GB for 1M rows; the machine's verdict comes
from `curation.drift` on all rows, and this report shows a person the distributions behind
it. `curation.drift` picks the statistics Evidently picks (p-value tests for references of
at most 1000 rows, normed Wasserstein and Jensen-Shannon above), so on the same rows their
verdicts are the same; on a sample they agree up to sampling noise.

This is the only module that imports evidently; it does so inside the functions, since the
import alone takes seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Evidently's test statuses that mean "this column drifted"
_FAILED = {"FAIL", "FAILED", "ERROR"}
# methods whose score is a p-value (drift when score < threshold); all others are distances
_P_VALUE_HINTS = (
    "p_value",
    "K-S",
    "chi-square",
    "Z-test",
    "Fisher",
    "Anderson",
    "Cramer",
    "Epps",
    "T-Test",
    "Mann",
)


def frames_for_report(
    features: np.ndarray,
    preds: Sequence[Any] | np.ndarray,
    confidence: np.ndarray,
    feature_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per prediction: the feature columns, `pred` (categorical, as text) and `confidence`.

    These are the columns `curation.drift.compute_drift` judges, so both count the same set.
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features has shape {x.shape}: pass an (N, F) array")
    names = [f"f{j}" for j in range(x.shape[1])] if feature_names is None else list(feature_names)
    if len(names) != x.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names for {x.shape[1]} feature columns")
    if {"pred", "confidence"} & set(names):
        raise ValueError("feature_names must not use the reserved names 'pred' or 'confidence'")
    preds = np.asarray(preds)
    conf = np.asarray(confidence, dtype=np.float64)
    if preds.shape != (len(x),) or conf.shape != (len(x),):
        raise ValueError(
            f"preds {preds.shape} and confidence {conf.shape} need one value per row of features ({len(x)})"
        )
    frame = pd.DataFrame(x.astype(np.float64, copy=False), columns=names)
    frame["pred"] = preds.astype(str)
    frame["confidence"] = conf
    return frame


def _sample(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    if rows is None or rows <= 0 or len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def _column_types(
    frame: pd.DataFrame,
    numeric_columns: Sequence[str] | None,
    categorical_columns: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    given = set(numeric_columns or ()) | set(categorical_columns or ())
    rest = [c for c in frame.columns if c not in given]
    numeric = (
        list(numeric_columns)
        if numeric_columns is not None
        else [
            c
            for c in rest
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        ]
    )
    categorical = (
        list(categorical_columns)
        if categorical_columns is not None
        else [c for c in rest if c not in numeric]
    )
    return numeric, categorical


def _drifted(value: float, method: str, threshold: float) -> bool:
    if any(hint.lower() in method.lower() for hint in _P_VALUE_HINTS):
        return value < threshold
    return value >= threshold


def _status(status: Any) -> str:
    # snapshot.dict() holds TestStatus enums, the saved JSON their string values
    return str(getattr(status, "value", status)).rsplit(".", 1)[-1].upper()


def summarize(snapshot_dict: dict) -> dict:
    """The verdict from a snapshot's dict: dataset drift, share, drifted columns, scores.

    A column counts as drifted when its drift test failed (include_tests=True); without
    tests, when its score crosses the threshold in the method's direction.
    """
    failed_metric_ids = {
        t.get("metric_config", {}).get("metric_id")
        for t in snapshot_dict.get("tests", [])
        if _status(t.get("status")) in _FAILED
    }
    have_tests = bool(snapshot_dict.get("tests"))
    per_column: dict[str, float] = {}
    methods: dict[str, str] = {}
    drifted: list[str] = []
    count, share, share_threshold = None, None, 0.5
    for metric in snapshot_dict.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith("ValueDrift"):
            column, value = config["column"], float(metric["value"])
            per_column[column] = value
            methods[column] = str(config.get("method", ""))
            threshold = float(config.get("threshold") or 0.1)
            if have_tests:
                is_drifted = metric.get("id") in failed_metric_ids
            else:
                is_drifted = _drifted(value, methods[column], threshold)
            if is_drifted:
                drifted.append(column)
        elif kind.endswith("DriftedColumnsCount"):
            count = float(metric["value"]["count"])
            share = float(metric["value"]["share"])
            share_threshold = float(config.get("drift_share", 0.5))
    if share is None:
        raise ValueError(
            "the report has no DriftedColumnsCount metric: run it with DataDriftPreset()"
        )
    return {
        "dataset_drift": bool(share >= share_threshold),
        "drift_share": share,
        "n_drifted": int(count) if count is not None else len(drifted),
        "n_columns": len(per_column),
        "drifted_columns": drifted,
        "per_column": per_column,
        "methods": methods,
    }


def run_preset(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    drift_share: float = 0.5,
):
    """Evidently's `DataDriftPreset` with its defaults (and tests) on these frames as given:
    the snapshot. Its per-column choice of test is the one `curation.drift` follows."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    report = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True)
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def write_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    html_path: Path,
    json_path: Path,
    sample_rows: int | None = 2000,
    seed: int = 0,
    numeric_columns: Sequence[str] | None = None,
    categorical_columns: Sequence[str] | None = None,
    drift_share: float = 0.5,
) -> dict:
    """Run Evidently's DataDriftPreset (with tests) on samples of both frames; save HTML + JSON.

    Returns `summarize(...)` plus the sampled row counts and the two paths. Columns are
    typed as given, else numeric dtypes are numerical and the rest categorical.
    """
    missing = [c for c in reference.columns if c not in current.columns]
    missing += [c for c in current.columns if c not in reference.columns]
    if missing:
        raise ValueError(
            f"columns {missing} are in only one of reference/current: give both the same columns"
        )
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(
            f"reference has {len(reference)} rows, current {len(current)}: need rows in both"
        )
    numeric, categorical = _column_types(reference, numeric_columns, categorical_columns)
    unknown = [c for c in [*numeric, *categorical] if c not in reference.columns]
    if unknown:
        raise ValueError(f"numeric_columns/categorical_columns name unknown columns {unknown}")

    ref = _sample(reference[[*numeric, *categorical]], sample_rows, seed)
    cur = _sample(current[[*numeric, *categorical]], sample_rows, seed + 1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # constant columns make Evidently's correlation widgets divide by zero: harmless
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = run_preset(ref, cur, numeric, categorical, drift_share)
        html_path, json_path = Path(html_path), Path(json_path)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
        snapshot.save_json(str(json_path))
        summary = summarize(snapshot.dict())
    summary.update(
        n_reference=len(ref), n_current=len(cur), html_path=str(html_path), json_path=str(json_path)
    )
    return summary
