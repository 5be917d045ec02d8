"""`demo`: the whole loop on the built-in digits task, against real servers.

The demo plays the two parts loopwright does not own: production traffic (the stream
simulator replays a scenario file) and people (a simulated annotator labels through
Label Studio's HTTP API). Everything between them is the loop's own flows, run exactly
as a deployment would run them. This is the only module of `flows/` that imports the
simulator and the annotator.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow

from flows.curate import curate_flow
from flows.drift_check import drift_check_flow
from flows.retrain import retrain_flow
from flows.runtime import REPO_ROOT, Runtime, open_runtime
from flows.score_batch import score_batch_flow
from flows.sync_labels import sync_labels_flow
from retrain.digits.annotator import SimulatedAnnotator
from retrain.digits.data import split_digits
from retrain.digits.scenario import Scenario, load_scenario
from retrain.digits.simulator import Stream
from storage.seed import write_seed
from storage.state import read_state, write_state


def resolve_scenario(path: str) -> Path:
    p = Path(path)
    if not p.is_file() and (REPO_ROOT / p).is_file():
        p = REPO_ROOT / p
    if not p.is_file():
        raise ValueError(
            f"scenario file {path!r} does not exist: pass --scenario PATH to a TOML file"
        )
    return p


def prepare_home(root: Path) -> str | None:
    """Start from a fresh data home; only a previous demo's home is ever removed."""
    if not root.exists() or not any(root.iterdir()):
        return None
    if (root / "state" / "demo.json").is_file():
        shutil.rmtree(root)
        return f"removed the previous demo's data home {root}"
    raise ValueError(
        f"data home {str(root)!r} holds data that is not a demo's: pass --home DIR for the demo, "
        "or remove it yourself"
    )


@dataclass
class Curve:
    """True accuracy per batch on the simulator's held-out images (never labeled)."""

    batches: list[int] = field(default_factory=list)
    phases: list[int] = field(default_factory=list)
    champion: list[float] = field(default_factory=list)
    initial: list[float] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


def true_accuracy(rt: Runtime, version: str, stream: Stream, i: int) -> float:
    images, labels = stream.holdout(i)
    x = images.reshape(len(images), *rt.task.input_shape).astype(np.float32)
    return float((rt.predictor(version)(x).argmax(axis=1) == labels).mean())


def write_incoming(rt: Runtime, batch) -> Path:
    """The batch as a production system would hand it to `score-batch`: ids, raw inputs, attrs."""
    inputs = [rt.task.encode_input(img) for img in batch.images]
    table = pa.table(
        {
            "request_id": pa.array(batch.request_ids, pa.string()),
            "input": pa.array(inputs, pa.binary()),
            "attrs": pa.array(
                [list(a.items()) for a in batch.attrs], pa.map_(pa.string(), pa.string())
            ),
        }
    )
    path = rt.home.root / "incoming" / f"batch-{batch.index:04d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_digits_seed(rt: Runtime, split) -> int:
    """The clean labeled digits the first champion learns from, into the seed store."""
    x = split.seed_x.reshape(len(split.seed_x), *rt.task.input_shape).astype(np.float32)
    return write_seed(
        rt.home,
        request_ids=[f"seed-{i:04d}" for i in range(len(x))],
        features=rt.task.features(x),
        inputs=[rt.task.encode_input(img) for img in split.seed_x],
        labels=[rt.task.classes[int(y)] for y in split.seed_y],
        attrs=[{"phase": "seed"} for _ in range(len(x))],
    )


def bootstrap(rt: Runtime, scenario: Scenario, ctx: dict):
    """Seed the label log with clean digits and train the first champion through `retrain`."""
    # The split's own seed stays fixed: the task's clean-digit expectation uses the same
    # holdout, which must never hold images the first champion trained on.
    split = split_digits(seed_rows=rt.cfg.retrain.seed_rows, holdout_rows=rt.cfg.demo.holdout_rows)
    write_digits_seed(rt, split)
    retrain_flow(force=True, reason="bootstrap: first champion from the seed labels", **ctx)
    return split


@flow(name="demo", log_prints=True)
def demo_flow(
    scenario_path: str,
    run_id: str,
    config_path: str | None = None,
    home: str | None = None,
    progress: bool = True,
) -> dict:
    """Bootstrap a champion, replay the scenario through every stage, and summarise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    rt = open_runtime(config_path, home)
    ctx = {"config_path": config_path, "home": str(rt.home.root)}
    scenario = load_scenario(resolve_scenario(scenario_path))
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(stage: str, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
        return out

    write_state(
        rt.home, "demo", {"run_id": run_id, "scenario": str(scenario_path), "status": "running"}
    )
    write_state(
        rt.home,
        "labelstudio",
        {"project_title": f"{rt.cfg.labelstudio.project_title} demo {run_id}"},
    )
    split = timed("bootstrap", bootstrap, rt, scenario, ctx)
    initial = rt.registry.get("champion")
    stream = Stream(scenario, split=split, run_id=f"{run_id}")
    truth: dict[str, str] = {}
    annotator = SimulatedAnnotator(
        truth,
        rt.task.classes,
        error_rate=rt.cfg.labeling.error_rate,
        seed=scenario.seed,
        name=rt.cfg.labeling.annotator,
    )
    curve = Curve()
    per_round = max(1, rt.cfg.demo.batches_per_round)
    events: list[dict] = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    ) as bar:
        job = bar.add_task("production batches", total=stream.n_batches)
        for start in range(0, stream.n_batches, per_round):
            round_batches = range(start, min(start + per_round, stream.n_batches))
            for i in round_batches:
                batch = stream.batch(i)
                truth.update(
                    {
                        r: rt.task.classes[int(y)]
                        for r, y in zip(batch.request_ids, batch.labels, strict=True)
                    }
                )
                timed("score-batch", score_batch_flow, str(write_incoming(rt, batch)), **ctx)
                champion = rt.registry.get("champion")
                curve.batches.append(i)
                curve.phases.append(batch.phase)
                curve.versions.append(champion)
                curve.champion.append(true_accuracy(rt, champion, stream, i))
                curve.initial.append(true_accuracy(rt, initial, stream, i))
                bar.update(
                    job,
                    advance=1,
                    description=f"batch {i} · phase {batch.phase} · champion {champion}",
                )
            drift = timed("drift-check", drift_check_flow, **ctx)
            curated = timed(
                "curate",
                curate_flow,
                budget=rt.cfg.curation.budget_per_batch * len(round_batches),
                seed=scenario.seed + start,
                **ctx,
            )
            project_id = read_state(rt.home, "labelstudio")["project_id"]
            labeled = timed(
                "labeling (simulated people)", annotator.label_pending, rt.labelstudio(), project_id
            )
            synced = timed("sync-labels", sync_labels_flow, **ctx)
            result = timed("retrain", retrain_flow, **ctx)
            trig = result["trigger"]
            outcome = "quiet"
            if result.get("retrained"):
                outcome = f"{result['challenger']} {'PROMOTED' if result['promoted'] else 'refused by the gate'}"
                events.append(
                    {
                        "after_batch": round_batches[-1],
                        "challenger": result["challenger"],
                        "promoted": result["promoted"],
                        "trigger": trig["kind"],
                    }
                )
            elif trig["fire"]:
                outcome = "waiting for labels"
            bar.console.print(
                f"batch {round_batches[-1]:>3} · phase {curve.phases[-1]} │ true acc "
                f"{100 * curve.champion[-1]:5.1f}% {curve.versions[-1]} │ drift {drift['status']:<7}│ "
                f"+{synced['new_labels']} labels ({curated['audit']} audit, {labeled} answered) │ "
                f"trigger {trig['kind'] if trig['fire'] else 'quiet'} → {outcome}",
                soft_wrap=True,
            )
    last = stream.n_batches - 1
    final = rt.registry.get("champion")
    onset = scenario.onset_batch
    before = [
        a for b, a in zip(curve.batches, curve.initial, strict=True) if onset is None or b < onset
    ]
    gate = read_state(rt.home, "last_gate") or {}
    summary = {
        "run_id": run_id,
        "scenario": scenario.name,
        "batches": stream.n_batches,
        "drift_onset_batch": onset,
        "champion_before": initial,
        "champion_after": final,
        "accuracy_before_drift": float(np.mean(before)) if before else None,
        "accuracy_under_drift": true_accuracy(rt, initial, stream, last),
        "accuracy_after_retraining": true_accuracy(rt, final, stream, last),
        "accuracy_measured_on": f"{len(stream.holdout(last)[1])} held-out images transformed like batch {last}",
        "labels_spent": rt.queries.label_counts().get("labelstudio", 0),
        "retrains": events,
        "report_card": gate.get("card_html"),
        "gate": {"promote": gate.get("promote"), "reasons": gate.get("reasons", [])},
        "curve": {
            "batch": curve.batches,
            "phase": curve.phases,
            "champion": curve.champion,
            "initial_champion": curve.initial,
            "version": curve.versions,
        },
        "stage_seconds": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - t0, 1),
        "finished": datetime.now(UTC).isoformat(),
    }
    write_state(rt.home, "demo", {**summary, "status": "done"})
    return summary
