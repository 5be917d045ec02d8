"""`loopwright bench loop`: run a scenario under several policies and seeds on the engine, then
summarise with the metrics of `evaluation/bench_metrics.py` (JSON schema: docs/bench-loop.md).

A job is (scenario, seed, policy): `flows.bench_run.run_job`. Why processes over jobs: each
job is a single-threaded torch workload ([retrain] threads = 1); on two cores two worker
processes finish about twice as fast as one process with two threads on a small network.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from flows.bench_policies import BENCH_OVERRIDES, Policy
from flows.bench_run import Job, LabelStudioSource, run_job
from flows.bench_summary import summarise

#: the order jobs start in: long jobs first, so two workers end together
COST = {
    "oracle": 0,
    "loop-random": 1,
    "periodic-random": 2,
    "loop-uncertainty": 2,
    "configured": 2,
    "static": 3,
}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _key(job: Job, fingerprint: str) -> str:
    # labels through Label Studio are the same labels, but a run asked for them reuses only
    # runs that went through it too
    via = ["labelstudio"] if job.labelstudio is not None else []
    return json.dumps(
        [job.scenario, job.seed, job.policy.name, dict(job.policy.overrides), fingerprint, *via],
        sort_keys=True,
        default=str,
    )


def run_jobs(
    jobs: list[Job],
    workers: int,
    on_done: Callable[[dict], None],
    fingerprint: str = "",
    runs_log: Path | None = None,
) -> list[dict]:
    """Run every job. With `runs_log` (JSON lines), each finished run is appended as it ends,
    and runs already there with the same key (scenario, seed, policy, overrides, config
    fingerprint) are reused: an interrupted benchmark resumes where it stopped."""
    done: dict[str, dict] = {}
    if runs_log is not None and runs_log.is_file():
        for line in runs_log.read_text().splitlines():
            rec = json.loads(line)
            done[rec["key"]] = rec["run"]
    results = [done[k] for j in jobs if (k := _key(j, fingerprint)) in done]
    for r in results:
        on_done(r)
    todo = sorted(
        (j for j in jobs if _key(j, fingerprint) not in done),
        key=lambda j: (j.seed, COST.get(j.policy.kind, 9), -(j.policy.budget or 0)),
    )
    by_name = {(j.seed, j.policy.name): j for j in todo}

    def finish(r: dict) -> None:
        results.append(r)
        if runs_log is not None:
            runs_log.parent.mkdir(parents=True, exist_ok=True)
            key = _key(by_name[(r["seed"], r["policy"])], fingerprint)
            with runs_log.open("a") as f:
                f.write(json.dumps({"key": key, "run": r}) + "\n")
        on_done(r)

    if workers <= 1 or len(todo) <= 1:
        _init_worker()
        for j in todo:
            finish(run_job(j))
        return results
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        for fut in cf.as_completed([pool.submit(run_job, j) for j in todo]):
            finish(fut.result())
    return results


def config_fingerprint(cfg) -> str:
    """The config a run used, as text: runs of another config are never reused."""
    return json.dumps(settings_of(cfg), sort_keys=True, default=str) if cfg is not None else ""


def settings_of(cfg) -> dict:
    """The config sections the loop decides with (the JSON's `settings`)."""
    from dataclasses import asdict

    names = ("task", "drift", "curation", "labeling", "trigger", "retrain", "gate", "demo")
    return {n: asdict(getattr(cfg, n)) for n in names}


def run_benchmark(
    scenario_path: str,
    seeds: list[int],
    policies: list[Policy],
    config: str | None,
    workers: int,
    progress: Callable[[dict], None] | None = None,
    command: str = "",
    multipliers: tuple[int, ...] = (),
    runs_log: Path | None = None,
    labelstudio: LabelStudioSource | None = None,
    degraded_checks: int = 0,
) -> dict:
    """Run every (seed, policy) job and summarise; `labelstudio` sends every label through
    that server (recorded as `settings.labels`), default in process."""
    from flows.config import load_config

    cfg = load_config(config)
    root = Path(tempfile.mkdtemp(prefix="loopwright-bench-"))
    jobs = [
        Job(
            scenario=str(scenario_path),
            seed=sd,
            policy=p,
            config=None if config is None else str(config),
            root=str(root),
            labelstudio=labelstudio,
            degraded_checks=degraded_checks if p.kind == "loop-uncertainty" else 0,
        )
        for sd in seeds
        for p in policies
    ]
    t0 = time.perf_counter()
    try:
        results = run_jobs(
            jobs, workers, progress or (lambda r: None), config_fingerprint(cfg), runs_log
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    doc = summarise(
        scenario_path, seeds, policies, cfg, results, time.perf_counter() - t0, command,
        list(multipliers),
    )  # fmt: skip
    doc["settings"] = {
        **settings_of(cfg),
        "config": None if config is None else str(config),
        "bench_overrides": dict(BENCH_OVERRIDES),
        "degraded_checks": degraded_checks,
        "labels": "in-process" if labelstudio is None else "labelstudio",
    }
    return doc


def _reachable(url: str, token: str, timeout_s: float) -> bool:
    """True if the server answers and takes the token; False if nothing answers at `url`."""
    from curation.labelstudio import LabelStudioAdapter, LabelStudioError

    try:
        with LabelStudioAdapter(url, token, timeout=timeout_s, retries=0) as adapter:
            adapter.check()
    except LabelStudioError as exc:
        if exc.status is None:
            return False
        raise
    return True


@contextmanager
def labelstudio_session(
    cfg, run_id: str, say: Callable[[str], object] = print
) -> Iterator[LabelStudioSource]:
    """Label Studio for `--via-labelstudio`: the `[labelstudio]` server of `cfg` with the token
    the loop would use (LOOPWRIGHT_LABELSTUDIO_TOKEN, else the local server's token file). A
    local server that does not answer is started with the project's script, as `loopwright
    demo` does, and stopped afterwards; a server already up is left running."""
    from flows import services
    from flows.loop.labeler import labelstudio_token

    ls = cfg.labelstudio
    try:
        token, _ = labelstudio_token(cfg)
    except RuntimeError:  # no token yet: a local server is started below, which makes one
        token = ""
    env: dict[str, str] | None = None
    if not token or not _reachable(ls.url, token, ls.timeout_s):
        if urlparse(ls.url).hostname not in services.LOCAL_HOSTS:
            raise RuntimeError(
                f"Label Studio at {ls.url} does not answer (or no token is set) and is not on "
                "this machine: start it, or set [labelstudio] url to a local one"
            )
        say(f"starting Label Studio at {ls.url} (scripts/labelstudio.sh start) …")
        started, token, env = services.start_labelstudio(ls.url)
        if not started:
            env = None  # it was running after all (ours): not ours to stop
    try:
        yield LabelStudioSource(ls.url, token, run_id, ls.timeout_s, ls.retries)
    finally:
        if env is not None:
            services.stop(services.Services(ls.url, "", started=["labelstudio"], env=env))
