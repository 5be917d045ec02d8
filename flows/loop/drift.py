"""The `drift-check` stage: recent traffic against a reference window: by default the
champion's training rows (`[drift] reference = "champion"`), or, for a model served
elsewhere, an earlier window of the log itself (`reference = "window"`, `drift_window.py`).

Which statistics: Evidently's own choice (`[drift] stattest = "auto"`): p-value tests (K-S,
chi-square, z) when the reference has at most 1000 rows, distances above; see
`curation.drift`. Each column's verdict says which test judged it (`method`, `score_kind`).

The champion path is the benchmarked one (bench/RESULTS.md, "Drift"), so memory stays bounded
whatever `[drift] window_rows` is:
* feature statistics: the current window's logged `features`, streamed by
  `Queries.window_batches` and summarised by `compute_drift_streaming`;
* model outputs (predicted class, confidence): the champion re-scores the reference and a
  seeded sample of at most `[drift] rescore_rows` rows of the window, so a freshly promoted
  champion is judged on its own outputs and a 10M-row window never decodes 10M inputs.
  When the sample would be the whole window (`rescore_rows >= window_rows`) the window is
  read once and serves both. The reference (its features and the champion's outputs on
  it) is fixed once the champion is, so a `Loop` computes it once per champion.

People get an Evidently HTML report on a sample when `[drift] html_report` asks
(`drift_outcome.py`). Everything lands under `<home>/reports/drift/`; the verdict is kept as
state (`last_drift`) for triggers and `status`, with where the latest report is. The clock
only names the report files and stamps the verdict; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.drift import ModelOutputs, compute_drift_streaming
from flows.loop.drift_outcome import finish, waiting
from flows.loop.drift_window import LOGGED, champion_traffic, current_what, logged_outputs, windows
from flows.loop.hints import NO_CHAMPION
from storage.schemas import PREDICTION_SCHEMA

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop

SAMPLE_COLUMNS = ("request_id", "features", "input")


def feature_matrix(table: pa.Table) -> np.ndarray:
    col = table.column("features").combine_chunks()
    n = table.num_rows
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(n, -1) if n else np.zeros((0, 0), dtype=np.float32)


def reference_rows(loop: Loop, champion: str, n: int) -> pa.Table:
    """The reference window: a seeded sample of the rows the champion was trained on.

    Why its training rows and not the first rows it served: they exist the moment a model is
    promoted, so a fresh champion is watched from its first batch, and "what the model
    learned from" is the distribution whose departure matters.
    """
    from storage.datasets import load_dataset

    ds_id = loop.registry.meta(champion).get("dataset_version")
    if not ds_id:
        return pa.table({"features": pa.array([], pa.list_(pa.float32()))})
    ids = list(load_dataset(loop.home, ds_id).train_ids)
    if len(ids) > n:
        rng = np.random.default_rng(0)
        ids = [ids[i] for i in sorted(rng.choice(len(ids), size=n, replace=False))]
    labeled = loop.queries.labeled_examples()
    return labeled.filter(
        pc.is_in(labeled.column("request_id"), value_set=pa.array(ids, pa.string()))
    )


def with_inputs(table: pa.Table) -> pa.Table:
    """Rows the champion can re-score (an input stored in the log)."""
    if "input" not in table.column_names:
        return table.slice(0, 0)
    return table.filter(pc.is_valid(table.column("input")))


def current_sample(loop: Loop, rows: int | None, columns=SAMPLE_COLUMNS) -> pa.Table:
    """A seeded uniform sample of at most `rows` rows of the current window (None: the whole
    window), in request id order."""
    batches = list(
        loop.queries.window_batches(
            loop.cfg.drift.window_rows, role="champion", columns=columns, sample_rows=rows
        )
    )
    if not batches:
        return pa.schema([PREDICTION_SCHEMA.field(c) for c in columns]).empty_table()
    return pa.Table.from_batches(batches).sort_by("request_id")


class Tracked:
    """Passes batches through, remembering how many rows went by and the latest `ts`."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self.batches, self.rows, self.last_ts = batches, 0, None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.batches:
            if batch.num_rows:
                self.rows += batch.num_rows
                top = pc.max(batch.column("ts")).as_py()
                self.last_ts = top if self.last_ts is None else max(self.last_ts, top)
            yield batch


def scored(loop: Loop, version: str, inputs: list[bytes]) -> tuple[np.ndarray, ModelOutputs]:
    """Features (as `score` logs them) and model `version`'s outputs on these inputs."""
    x = loop.decode_inputs(inputs)
    probs = loop.predictor(version)(x)
    return loop.task.features(x), ModelOutputs(probs.argmax(axis=1), probs.max(axis=1))


def vectors(x: np.ndarray) -> pa.Table:
    """An (N, F) matrix as a one-column `features` table (what the streaming sketches read)."""
    flat = pa.array(np.ascontiguousarray(x, dtype=np.float32).reshape(-1))
    return pa.table({"features": pa.FixedSizeListArray.from_arrays(flat, x.shape[1])})


def statistics(loop: Loop, reference, current, outputs=None):
    """`compute_drift_streaming` with the `[drift]` rules."""
    cfg = loop.cfg.drift
    return compute_drift_streaming(
        reference,
        current,
        loop.task.classes,
        numeric_threshold=cfg.numeric_threshold,
        categorical_threshold=cfg.categorical_threshold,
        drift_share=cfg.drift_share,
        outputs=outputs,
        stattest=cfg.stattest,
        p_value=cfg.p_value,
    )


class Reference:
    """A champion's reference rows (with inputs) and, once asked, its outputs on them."""

    def __init__(self, loop: Loop, champion: str) -> None:
        self.loop, self.champion = loop, champion
        traffic = champion_traffic(loop, champion)  # None: its training rows (drift_window.py)
        self.rows, self.what = traffic or (
            with_inputs(reference_rows(loop, champion, loop.cfg.drift.reference_rows)),
            "sample of the champion's training rows",
        )
        self._scored: tuple[np.ndarray, ModelOutputs] | None = None

    def scored(self) -> tuple[np.ndarray, ModelOutputs]:
        if self._scored is None:
            inputs = self.rows.column("input").to_pylist()
            self._scored = scored(self.loop, self.champion, inputs)
        return self._scored


def check(loop: Loop) -> dict:
    if loop.cfg.drift.reference == "window":
        return check_window(loop)
    cfg = loop.cfg.drift
    champion = loop.registry.get("champion")
    now = datetime.now(UTC)
    run_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    if champion is None:
        return waiting(loop, None, NO_CHAMPION, now)
    key = ("champion", champion, cfg.reference_rows)
    ref = loop.cached_drift_reference(key, lambda: Reference(loop, champion))
    wanted = min(cfg.rescore_rows, cfg.window_rows)
    # a sample as large as the window is the window (the same rows): read once, used twice
    whole = None
    if cfg.rescore_rows >= cfg.window_rows:
        whole = current_sample(loop, None, (*SAMPLE_COLUMNS, "ts"))
        sample = whole.select(list(SAMPLE_COLUMNS))
    else:
        sample = current_sample(loop, wanted)
    if sample.num_rows < wanted or ref.rows.num_rows == 0:
        return waiting(
            loop,
            champion,
            f"{sample.num_rows} recent rows ({cfg.window_rows} needed) and "
            f"{ref.rows.num_rows} reference rows with inputs",
            now,
        )
    sample = with_inputs(sample)
    if sample.num_rows == 0:
        reason = "the window's rows have no stored input: the champion cannot re-score them"
        return waiting(loop, champion, reason, now)
    ref_x, ref_out = ref.scored()
    _, cur_out = scored(loop, champion, sample.column("input").to_pylist())
    window = Tracked(
        whole.select(["ts", "features"]).to_batches()
        if whole is not None
        else loop.queries.window_batches(
            cfg.window_rows, role="champion", columns=("ts", "features")
        )
    )
    result = statistics(loop, [vectors(ref_x)], window, outputs=(ref_out, cur_out))
    if window.rows < cfg.window_rows:
        reason = f"{window.rows} recent rows ({cfg.window_rows} needed)"
        return waiting(loop, champion, reason, now)
    reference = {
        "kind": "champion",
        "rows": ref.rows.num_rows,
        "rescored": ref.rows.num_rows,
        "what": ref.what,
    }
    current = {"rows": window.rows, "rescored": sample.num_rows, "to": str(window.last_ts)}
    report = (ref_x, ref_out, lambda: feature_matrix(sample), cur_out)
    return finish(loop, now, run_id, result, champion, champion, reference, current, report)


def check_window(loop: Loop) -> dict:
    """The log against an earlier window of itself: features, predicted class and confidence
    as logged, nothing re-scored (`drift_window.py` says which rows)."""
    cfg = loop.cfg.drift
    champion = loop.registry.get("champion")
    now = datetime.now(UTC)
    run_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    w = windows(loop)
    if w.waiting:
        return waiting(loop, champion, w.waiting, now)
    wanted = min(cfg.report_sample_rows, cfg.window_rows)
    sample = pa.Table.from_batches(
        list(loop.queries.window_batches(cfg.window_rows, role="champion", columns=LOGGED,
                                         sample_rows=wanted, **w.current)),
        schema=pa.schema([PREDICTION_SCHEMA.field(c) for c in LOGGED]),
    ).sort_by("ts")  # fmt: skip
    short = (
        f"the current window has {{}} rows {current_what(w)} ({cfg.window_rows} needed, "
        f"[drift] window_rows) after the reference ({w.what}): log more predictions, or "
        f"{w.advice}"
    )
    if sample.num_rows < wanted:
        return waiting(loop, champion, short.format(sample.num_rows), now)
    window = Tracked(
        loop.queries.window_batches(cfg.window_rows, role="champion", columns=LOGGED, **w.current)
    )
    result = statistics(loop, [w.reference], window)
    if window.rows < cfg.window_rows:
        return waiting(loop, champion, short.format(window.rows), now)
    ts = w.reference.column("ts")
    reference = {
        "kind": "window",
        "rows": w.reference.num_rows,
        "rescored": 0,
        "what": w.what,
        "from": str(pc.min(ts).as_py()),
        "to": str(pc.max(ts).as_py()),
    }
    current = {"rows": window.rows, "rescored": 0, "to": str(window.last_ts)}
    classes = loop.task.classes
    report = (feature_matrix(w.reference), logged_outputs(w.reference, classes),
              lambda: feature_matrix(sample), logged_outputs(sample, classes))  # fmt: skip
    subject = f"window: {w.what}"
    return finish(loop, now, run_id, result, champion, subject, reference, current, report)
