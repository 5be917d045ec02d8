"""One benchmark job: a policy over one seed's stream, run by the engine, observed per batch.

Why the engine and nothing else: a job is `run_round(loop, ...)` once per batch over a
`flows.loop.engine.Loop` in a temporary data home, the same function `loopwright demo` runs
with the Prefect flows, so `configured` decides exactly as the demo does and every other
policy is the same loop with other config values (`flows/bench_policies.py`). What the job
adds is observation only, never a decision: the champion's accuracy on each batch before its
labels exist, on the simulation's held-out set, and the held-out change of each promotion
(by the gate at once, or by a rollout reaching 100 % rounds later) with the discordant counts
of the paired test over the held-out images (`promotion_record`).

Speed: the world (traffic, truth, held-out sets) is the task simulation's, cached per
process; the first champion depends only on the seed rows, `[retrain]`, `[gate]` and the
task, which no policy overrides, so it is trained once per (seed, config) per process in a
template home that each job copies (a first model the configured gate refuses is an error: no policy
could be compared then).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flows.bench_policies import RIVER, Policy, policy_config
from flows.loop.feedback import simulated_feedback
from flows.loop.round import run_round

BOOTSTRAP_REASON = "bootstrap: first champion from the seed labels"
#: overrides of these sections (but `gate.enabled`) change the first champion
BOOTSTRAP_SECTIONS = ("task", "retrain", "gate", "demo")
MAX_REASONS = 3


@dataclass(frozen=True)
class LabelStudioSource:
    """A real Label Studio server for `--via-labelstudio`: picklable, the token kept out of repr."""

    url: str
    token: str = field(repr=False)
    run_id: str
    timeout_s: float = 30.0
    retries: int = 3

    def adapter(self):
        from curation.labelstudio_annotate import AnnotatingAdapter

        return AnnotatingAdapter(self.url, self.token, timeout=self.timeout_s, retries=self.retries)


@dataclass(frozen=True)
class Job:
    """(scenario file, absolute stream seed, policy) with the config and where labels go."""

    scenario: str
    seed: int
    policy: Policy
    config: str | None
    root: str  # temporary folder of the run: template and job homes go below it
    labelstudio: LabelStudioSource | None = None  # None: the in-process InMemoryLabelStudio
    degraded_checks: int = 0
    cache_parts: bool = True  # the logs' parts kept decoded in memory (same answers, faster)


def simulation_of(task):
    """The task's embedded simulation (traffic, truth, people), or an error naming the fix."""
    if getattr(task, "simulation", None) is None:
        raise ValueError(
            f"task {task.name!r} has no simulation to replay a scenario with: `bench loop` needs "
            "Task.simulation (see retrain/task.py): give the task one, or run the benchmark "
            "with a task that has one (the default [task] plugin, digits, has)"
        )
    return task.simulation()


def project_title(scenario: str, policy: str, seed: int, run_id: str) -> str:
    """One Label Studio project per benchmark run, policy and seed.

    >>> project_title("tiny", "loop-uncertainty@5", 3, "20261201093000")
    'bench-tiny-loop-uncertainty@5-s3-20261201093000'
    """
    return f"bench-{scenario}-{policy}-s{seed}-{run_id}"


def _world(cfg, scenario_path: str, seed: int):
    from retrain.task import load_task

    sim = simulation_of(load_task(cfg.task.plugin, cfg.task.classes))
    scenario = sim.load_scenario(scenario_path)
    return sim.world(
        scenario, seed, seed_rows=cfg.retrain.seed_rows, holdout_rows=cfg.demo.holdout_rows
    )


#: DuckDB threads of a job's log reader: a job is a single-threaded workload, and `bench loop`
#: runs one worker process per core (more threads on tiny logs only add scheduling)
READER_THREADS = 1


def _open_loop(cfg, root: Path, **kw):
    from dataclasses import replace

    from flows.loop.engine import Loop
    from storage.home import DataHome

    if cfg.storage.threads != READER_THREADS:  # how the logs are read, never what they answer
        cfg = replace(cfg, storage=replace(cfg.storage, threads=READER_THREADS))
    return Loop(cfg, DataHome(root.resolve()).ensure(), artifacts=False, **kw)


_TEMPLATES: dict[str, Path] = {}  # per process: bootstrap key -> template home


def _bootstrap_key(job: Job) -> str:
    kept = {
        k: v
        for k, v in sorted(job.policy.overrides.items())
        if k.split(".")[0] in BOOTSTRAP_SECTIONS
        and k not in ("gate.enabled", "demo.feedback_share")
    }  # the first champion is fit before any gate or user feedback
    return json.dumps([job.root, job.scenario, job.seed, job.config, kept], default=str)


def _template(job: Job, world) -> tuple[Path, float]:
    """A data home holding the seed rows and the first champion, made once per key and process
    (seconds spent making it; 0 when reused). Made with the gate as configured (a policy
    without gate shares it): a first model the gate refuses is an error naming the fix."""
    key = _bootstrap_key(job)
    if key in _TEMPLATES and _TEMPLATES[key].is_dir():
        return _TEMPLATES[key], 0.0
    t0 = time.perf_counter()
    gated = Policy(
        job.policy.kind,
        job.policy.budget,
        {k: v for k, v in job.policy.overrides.items() if k != "gate.enabled"},
    )
    path = Path(job.root) / "templates" / f"t{len(_TEMPLATES)}-p{os.getpid()}"
    loop = _open_loop(policy_config(gated, job.config), path)
    loop.write_seed(world.seed_examples)
    result = loop.retrain(force=True, reason=BOOTSTRAP_REASON)
    if not result.get("promoted"):
        raise RuntimeError(
            f"seed {job.seed}: the gate refused the first model, so no champion serves the "
            f"stream: {result.get('next') or gate_reasons(result.get('gate'))}"
        )
    _TEMPLATES[key] = path
    return path, time.perf_counter() - t0


def _home(job: Job, world) -> tuple[Path, float]:
    """The job's fresh data home: a copy of the template."""
    home = Path(job.root) / "jobs" / f"{job.policy.name}-s{job.seed}-p{os.getpid()}"
    template, seconds = _template(job, world)
    shutil.copytree(template, home)
    return home, seconds


def _labeler(job: Job) -> Callable[[], object]:
    """The labeler port of one job: its own in-process Label Studio, or the real server."""
    if job.labelstudio is None:
        from curation.labelstudio_memory import InMemoryLabelStudio

        memory = InMemoryLabelStudio()
        return lambda: memory
    return job.labelstudio.adapter


def correct(predict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row: is its most probable class the true one (the paired held-out tests need it)."""
    return np.asarray(predict(x)).argmax(axis=1) == np.asarray(y)


def accuracy(predict, x: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose most probable class is the true one."""
    return float(correct(predict, x, y).mean())


def promotion_record(batch: int, old: np.ndarray, new: np.ndarray, how: str, why) -> dict:
    """A promotion as the bench keeps it: held-out accuracy of the old and the new champion
    and the discordant counts of the paired test (`b`: images old right and new wrong, `c`:
    the reverse), not the vectors. `how`: "gate" (promoted at once) or "rollout" (a canary
    that reached 100 %)."""
    before, after = float(old.mean()), float(new.mean())
    return {
        "batch": batch,
        "heldout_before": before,
        "heldout_after": after,
        "delta": after - before,
        "b": int((old & ~new).sum()),
        "c": int((~old & new).sum()),
        "via": how,
        "reasons": list(why),
    }


def gate_reasons(gate: dict | None) -> list[str]:
    """The gate's failed checks (or its reasons when none failed), at most MAX_REASONS."""
    if not gate:
        return []
    failed = [c["detail"] for c in gate.get("checks", []) if not c.get("passed", True)]
    return (failed or list(gate.get("reasons", [])))[:MAX_REASONS]


def shuffled_labels(labeled, train_ids: tuple[str, ...], seed: int):
    """`labeled` with the labels of the train rows permuted among themselves (seeded): a
    challenger fit on them has learned nothing, whatever its training loss says."""
    import pyarrow as pa
    import pyarrow.compute as pc

    is_train = np.asarray(
        pc.is_in(labeled.column("request_id"), value_set=pa.array(list(train_ids), pa.string()))
    )
    labels = np.array(labeled.column("label").to_pylist(), dtype=object)
    where = np.flatnonzero(is_train)
    labels[where] = labels[np.random.default_rng(seed).permutation(where)]
    col = labeled.schema.get_field_index("label")
    return labeled.set_column(col, "label", pa.array(labels.tolist(), pa.string()))


def degraded_check(loop, result: dict, batch: int, scratch: Path) -> dict:
    """Offer the gate a challenger fine-tuned on the same rows with shuffled labels, through
    the engine's own `train` and `report_card`, in a throwaway copy of the home (so the run's
    registry never holds it): the gate must refuse it. Returns {batch, promoted, reasons}."""
    from flows.loop.card import report_card
    from flows.loop.retrain import train
    from storage.datasets import load_dataset

    before = result["gate"]["champion_before"]
    shutil.copytree(loop.home.root, scratch)
    try:
        other = _open_loop(loop.cfg, scratch, cache_parts=loop.cache_parts)
        # decoded inputs are keyed by their bytes: the run's are the copy's (models are not
        # shared: the copy's registry gets a version name the run may use later)
        other.decoded = loop.decoded
        ds = load_dataset(other.home, result["dataset"])
        labeled = other.queries.labeled_examples()
        version = train(other, ds, shuffled_labels(labeled, ds.train_ids, batch), before)
        gate = report_card(other, ds, labeled, version, before)["gate"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"batch": batch, "promoted": bool(gate["promote"]), "reasons": gate_reasons(gate)}


def run_job(job: Job) -> dict:
    """Run one job in a temporary data home (deleted afterwards); returns its run dict."""
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = policy_config(job.policy, job.config)
    world = _world(cfg, job.scenario, job.seed)
    if job.policy.kind in RIVER:  # the stream-learning anchor: no loop (flows/bench_river.py)
        from flows.bench_river import run_river
        from retrain.task import load_task

        return run_river(job, cfg, world, load_task(cfg.task.plugin, cfg.task.classes))
    home, boot_s = _home(job, world)
    try:
        if job.labelstudio is not None:
            from storage.home import DataHome
            from storage.state import write_state

            title = project_title(
                world.scenario.name, job.policy.name, job.seed, job.labelstudio.run_id
            )
            write_state(DataHome(home.resolve()), "labelstudio", {"project_title": title})
        loop = _open_loop(
            cfg,
            home,
            cache_parts=job.cache_parts,
            labelstudio=_labeler(job),
            annotator=world.annotator(cfg.labeling.error_rate, cfg.labeling.annotator),
        )
        run = observe(loop, world, job)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    run["bootstrap_seconds"] = round(boot_s, 2)
    run["seconds"] = round(time.perf_counter() - t0 - boot_s, 2)
    run["cpu_seconds"] = round(time.process_time() - c0, 2)
    return run


def observe(loop, world, job: Job) -> dict:
    """`run_round` per batch, with the bench's observations around it (JSON-able run dict)."""
    policy = job.policy
    acc, hacc, cum, kinds, triggers, retrains = [], [], [], [], [], []
    promotions, refusals, rounds, phases, degraded, rollouts = [], [], [], [], [], []
    total, fit_s = 0, 0.0
    for i in range(world.n_batches):
        champion = loop.registry.get("champion")  # the model that serves batch i
        predict = loop.served_predictor(champion)  # with its label-shift correction, if any
        table = world.table(i)
        # measured before any label of this batch exists: no row of it was ever labeled;
        # decoded through the loop's cache (the same arrays), so `score` finds them decoded
        x = loop.decode_inputs(table.column("input").to_pylist())
        acc.append(accuracy(predict, x, world.labels(i)))
        hx, hy = world.heldout(i)
        old_right = correct(predict, hx, hy)
        hacc.append(float(old_right.mean()))
        phases.append(int(world.phase(i)))
        ids = table.column("request_id").to_pylist()  # the demo's users answer the same
        said = simulated_feedback(ids, world.truth, loop.cfg.demo.feedback_share)
        done = run_round(loop, table, i, job.seed, feedback=said)
        r, result = done.round, done.retrain
        rounds.append(r.to_dict())
        total += r.labels_added
        cum.append(total)
        if r.trigger_fired:
            triggers.append(i)
            kinds.append(r.trigger_kind)
        if r.rollout_decision is not None:
            rollouts.append({"batch": i, "decision": r.rollout_decision})
        why = gate_reasons(result.get("gate")) if r.retrained else []
        if r.retrained:
            retrains.append(i)
            meta = loop.registry.meta(result["challenger"])
            fit_s += float(meta.get("train", {}).get("seconds", 0))
            if len(degraded) < job.degraded_checks:
                scratch = Path(str(loop.home.root) + "-degraded")
                degraded.append(degraded_check(loop, result, i, scratch))
            # a refusal: not promoted and no rollout started for it ([rollout] enabled: the
            # candidate goes on as a canary, promoted, if ever, at a later round)
            if not r.promoted and r.rollout_decision != "started":
                refusals.append({"batch": i, "reasons": why})
        if r.promoted:  # by the gate at once, or by a rollout reaching 100 % (any round)
            new_right = correct(loop.served_predictor(loop.registry.get("champion")), hx, hy)
            how = "gate" if result.get("promoted") else "rollout"
            promotions.append(promotion_record(i, old_right, new_right, how, why))
    return {
        "policy": policy.name,
        "kind": policy.kind,
        "budget": policy.budget,
        "seed": job.seed,
        "overrides": dict(policy.overrides),
        "strategy": loop.cfg.curation.strategy,
        "budget_per_batch": loop.cfg.curation.budget_per_batch,
        "phases": phases,
        "heldout_rows": len(world.heldout(0)[1]),
        "accuracy": acc,
        "heldout_accuracy": hacc,
        "labels_cumulative": cum,
        "labels_spent": total,
        "trigger_batches": triggers,
        "trigger_kinds": kinds,
        "retrain_batches": retrains,
        "promotions": promotions,
        "refusals": refusals,
        "rollouts": rollouts,
        "degraded": degraded,
        "fit_seconds": round(fit_s, 2),
        "rounds": rounds,
    }
