"""`demo`: the whole loop on a task's embedded simulation, against real servers.

The demo plays the two parts loopwright does not own: production traffic (the task's
simulator replays a scenario file) and people (a simulated annotator labels through Label
Studio's HTTP API). Everything between them is the loop's own flows, run exactly as a
deployment would run them, one round per batch (`flows.loop.round.run_round`, the same
function the benchmark calls with the engine in process: that is what makes their rounds
comparable batch by batch).
"""

from __future__ import annotations

import contextlib
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
from flows.demo_online import ModelServer, online_capable
from flows.drift_check import drift_check_flow
from flows.loop.feedback import simulated_feedback
from flows.loop.open import open_loop
from flows.loop.round import run_round
from flows.retrain import retrain_flow
from flows.rollout import rollout_flow
from flows.score_batch import score_batch_flow
from flows.summary import rollout_summary, rollout_text
from flows.sync_labels import sync_labels_flow
from storage.state import write_state

REPO_ROOT = Path(__file__).resolve().parent.parent


def simulation_of(task):
    """The task's embedded simulation (traffic, truth, people), or a clear error."""
    if task.simulation is None:
        raise ValueError(
            f"task {task.name!r} has no simulation to replay a scenario with: the demo and the "
            "benchmark need Task.simulation (see retrain/task.py); run them with a task that has "
            'one, e.g. [task] plugin = "retrain.digits.task:TASK"'
        )
    return task.simulation()


def resolve_scenario(sim, path: str) -> Path:
    """A scenario file by path (or relative to the repository, or a bundled name)."""
    p = Path(path)
    if not p.is_file() and (REPO_ROOT / p).is_file():
        p = REPO_ROOT / p
    if p.is_file():
        return p
    try:
        return Path(sim.find_scenario(path))
    except (ValueError, FileNotFoundError):
        raise ValueError(
            f"scenario file {path!r} does not exist: pass --scenario PATH to a TOML file"
        ) from None


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
    """True accuracy per batch on the simulator's held-out inputs (never labeled)."""

    batches: list[int] = field(default_factory=list)
    phases: list[int] = field(default_factory=list)
    champion: list[float] = field(default_factory=list)
    initial: list[float] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


class PrefectStages:
    """The loop's stages as deployments run them: each a Prefect flow run over the data home
    (each opening its own `Loop`), with labels through Label Studio's HTTP API."""

    def __init__(self, ctx: dict, home: Path, annotator, server=None, task=None) -> None:
        self.ctx, self.home, self.annotator = ctx, home, annotator
        self.seconds: dict[str, float] = {}  # wall time per stage, summed over rounds
        #: the serving endpoint (`flows.demo_online.ModelServer`) once the demo is online:
        #: traffic and feedback go over HTTP; None: batches through `score-batch`
        self.server, self.task = server, task

    def _timed(self, stage: str, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def score(self, table: pa.Table) -> dict:
        """Online: the simulator is the endpoint's client (POST /v1/predict, in chunks of
        `[serving] max_instances`; ack: the rows are logged when the answer arrives).
        Offline: the batch as a production system hands it to `score-batch`, a Parquet file."""
        if self.server is not None:
            from flows.demo_online import json_inputs

            instances = json_inputs(self.task, table.column("input").to_pylist())
            return self._timed(
                "serve-model (HTTP)",
                self.server.predict,
                table,
                instances,
                self.server.max_instances,
            )
        index = len(list((self.home / "incoming").glob("batch-*.parquet")))
        path = self.home / "incoming" / f"batch-{index:04d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        return self._timed("score-batch", score_batch_flow, str(path), **self.ctx)

    def feedback(self, pairs) -> int:
        """Users answer: POST /v1/feedback (offline: label events, as the engine writes)."""
        if self.server is not None:
            return self._timed("feedback (HTTP)", self.server.feedback, pairs)
        loop = open_loop(self.ctx["config_path"], self.ctx["home"])
        return self._timed("feedback", loop.feedback, pairs)

    def drift_check(self) -> dict:
        return self._timed("drift-check", drift_check_flow, **self.ctx)

    def curate(self, budget: int | None = None, seed: int | None = None) -> dict:
        return self._timed("curate", curate_flow, budget=budget, seed=seed, **self.ctx)

    def label(self) -> int:
        """People at work: the simulated annotator answers the pending tasks in Label Studio."""
        loop = open_loop(self.ctx["config_path"], self.ctx["home"], annotator=self.annotator)
        return self._timed("labeling (simulated people)", loop.label)

    def sync(self) -> dict:
        return self._timed("sync-labels", sync_labels_flow, **self.ctx)

    def retrain(self, force: bool = False, reason: str = "") -> dict:
        return self._timed("retrain", retrain_flow, force=force, reason=reason, **self.ctx)

    def rollout(self, retrain_result: dict) -> dict:
        """The `rollout` flow, with the endpoint's `/v1/stats`, when a rollout is active (or
        just started); else the stage in place (it does nothing: no flow run to wait for)."""
        from flows.loop.online import busy, stage

        started = retrain_result.get("rollout")
        loop = open_loop(self.ctx["config_path"], self.ctx["home"])
        if not started and busy(loop) is None:
            return stage(loop, retrain_result, None)
        stats_url = f"{self.server.url}/v1/stats" if self.server is not None else "off"
        result = self._timed(
            "rollout", rollout_flow, started=started, stats_url=stats_url, **self.ctx
        )
        return result["round"]


def true_accuracy(loop, version: str, world, i: int, served: bool = True) -> float:
    """Held-out accuracy of `version` on batch i's world: as served (its label-shift
    correction applied, if any) or, `served=False`, its raw posteriors (the static line)."""
    x, y = world.heldout(i)
    predict = loop.served_predictor(version) if served else loop.predictor(version)
    return float((predict(x).argmax(axis=1) == y).mean())


def outcome_text(result: dict) -> str:
    trig = result["trigger"]
    if result.get("rollout"):
        return f"{result['challenger']} passed the gate: rollout started"
    if result.get("retrained"):
        verdict = "PROMOTED" if result["promoted"] else "refused by the gate"
        return f"{result['challenger']} {verdict}"
    if trig["fire"] and "rollout of" in (result.get("waiting") or ""):
        return "no new candidate while the rollout runs"
    return "waiting for labels" if trig["fire"] else "quiet"


@flow(name="demo", log_prints=True)
def demo_flow(
    scenario_path: str,
    run_id: str,
    config_path: str | None = None,
    home: str | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> dict:
    """Bootstrap a champion, replay the scenario one round per batch, and summarise (with
    the environment `[demo]` asks for, e.g. rollouts on: `demo_environment`)."""
    from flows.config import load_config
    from flows.demo_online import demo_environment, environment

    with environment(demo_environment(load_config(config_path))):
        return _replay(scenario_path, run_id, config_path, home, progress, seed)


def _replay(scenario_path, run_id, config_path, home, progress, seed) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.config import load_config
    from retrain.simulation import adopt_scenario_task

    named = load_config(config_path).task
    adopt_scenario_task(named.plugin, named.classes, scenario_path)  # its task, every stage
    loop = open_loop(config_path, home)
    cfg = loop.cfg
    ctx = {"config_path": config_path, "home": str(loop.home.root)}
    sim = simulation_of(loop.task)
    scenario = sim.load_scenario(resolve_scenario(sim, scenario_path))
    run_seed = scenario.seed if seed is None else int(seed)
    world = sim.world(
        scenario, run_seed, seed_rows=cfg.retrain.seed_rows, holdout_rows=cfg.demo.holdout_rows
    )
    t0 = time.perf_counter()
    write_state(
        loop.home,
        "demo",
        {"run_id": run_id, "scenario": str(scenario_path), "seed": run_seed, "status": "running"},
    )
    write_state(
        loop.home,
        "labelstudio",
        {"project_title": f"{cfg.labelstudio.project_title} demo {run_id}"},
    )
    annotator = world.annotator(cfg.labeling.error_rate, cfg.labeling.annotator)
    stages = PrefectStages(ctx, loop.home.root, annotator)
    online = contextlib.ExitStack()  # the serving endpoint, stopped when the rounds end
    server = None
    if online_capable(loop.task, world.table(0)):  # the endpoint in front of the stream
        server = ModelServer(loop.home.root, config_path, cfg.serving.max_instances).launch()
    start = time.perf_counter()
    try:  # the server starts meanwhile; it serves once the bootstrap made a champion
        loop.write_seed(world.seed_examples)
        stages.retrain(force=True, reason="bootstrap: first champion from the seed labels")
        stages.seconds = {"bootstrap": time.perf_counter() - start}
        if server is not None:
            start = time.perf_counter()
            online.enter_context(server)
            stages.server, stages.task = server, loop.task
            stages.seconds["serve-model start"] = time.perf_counter() - start
            print(f"serving {loop.home.root} on {server.url} (the simulator is its client)")
    except BaseException:
        if server is not None:
            server.stop()
        raise
    initial = loop.registry.get("champion")
    curve, rounds, events = Curve(), [], []
    with (
        online,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not progress,
        ) as bar,
    ):
        job = bar.add_task("production batches", total=world.n_batches)
        for i in range(world.n_batches):
            champion = loop.registry.get("champion")  # the model that serves this batch
            curve.batches.append(i)
            curve.phases.append(world.phase(i))
            curve.versions.append(champion)
            curve.champion.append(true_accuracy(loop, champion, world, i))
            curve.initial.append(true_accuracy(loop, initial, world, i, served=False))
            table = world.table(i)
            said = simulated_feedback(
                table.column("request_id").to_pylist(), world.truth, cfg.demo.feedback_share
            )
            done = run_round(stages, table, i, run_seed, feedback=said)
            rounds.append(done.round.to_dict())
            result, trig = done.retrain, done.retrain["trigger"]
            if result.get("retrained"):
                events.append(
                    {
                        "after_batch": i,
                        "challenger": result["challenger"],
                        "promoted": result["promoted"],
                        "rollout": result.get("rollout"),
                        "trigger": trig["kind"],
                    }
                )
            bar.update(job, advance=1, description=f"batch {i} · phase {world.phase(i)}")
            bar.console.print(
                f"batch {i:>3} · phase {curve.phases[-1]} │ true acc "
                f"{100 * curve.champion[-1]:5.1f}% {champion} │ drift {done.drift['status']:<7}│ "
                f"+{done.synced['new_labels']} labels ({done.curated.get('audit', 0)} audit, "
                f"{done.answered} answered) │ trigger {trig['kind'] if trig['fire'] else 'quiet'} "
                f"→ {outcome_text(result)}{rollout_text(done.round)}",
                soft_wrap=True,
            )
    last = world.n_batches - 1
    final = loop.registry.get("champion")
    served = sum(world.table(i).num_rows for i in range(world.n_batches))
    onset = world.onset_batch
    before = [
        a for b, a in zip(curve.batches, curve.initial, strict=True) if onset is None or b < onset
    ]
    from storage.state import read_state

    gate = read_state(loop.home, "last_gate") or {}
    summary = {
        "run_id": run_id,
        "scenario": scenario.name,
        "seed": run_seed,
        "rounds": rounds,
        "batches": world.n_batches,
        "drift_onset_batch": onset,
        "champion_before": initial,
        "champion_after": final,
        "accuracy_before_drift": float(np.mean(before)) if before else None,
        "accuracy_under_drift": true_accuracy(loop, initial, world, last),
        "accuracy_after_retraining": true_accuracy(loop, final, world, last),
        "accuracy_measured_on": f"{len(world.heldout(last)[1])} held-out inputs drifted like batch {last}",
        "labels_spent": loop.queries.label_counts().get("labelstudio", 0),
        "retrains": events,
        "online": stages.server is not None,
        "rollouts": rollout_summary(loop.home, served),
        "report_card": gate.get("card_html"),
        "gate": {"promote": gate.get("promote"), "reasons": gate.get("reasons", [])},
        "curve": {
            "batch": curve.batches,
            "phase": curve.phases,
            "champion": curve.champion,
            "initial_champion": curve.initial,
            "version": curve.versions,
        },
        "stage_seconds": {k: round(v, 1) for k, v in stages.seconds.items()},
        "seconds": round(time.perf_counter() - t0, 1),
        "finished": datetime.now(UTC).isoformat(),
    }
    write_state(loop.home, "demo", {**summary, "status": "done"})
    return summary
