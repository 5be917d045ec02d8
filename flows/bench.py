"""`loopwright bench loop`: replay a scenario under five policies and several seeds, then
summarise with the metrics of `evaluation/bench_metrics.py` (JSON schema: docs/bench-loop.md).

Why processes over (seed, policy) jobs: each job is a single-threaded torch workload; on
two cores two worker processes (torch limited to one thread each) finish about twice as
fast as one process with two threads on this small CNN.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from flows.bench_replay import KINDS, Policy, replay
from flows.bench_summary import summarise
from flows.bench_world import Settings, build_world
from retrain.digits.scenario import load_scenario

if TYPE_CHECKING:
    from flows.bench_labelstudio import LabelStudioSource


def make_policies(
    batch_size: int, shares: list[float], multipliers: list[int], kinds: tuple[str, ...] = KINDS
) -> list[Policy]:
    budgets = sorted({max(1, round(sh * batch_size)) for sh in shares})
    out = [Policy("static", 0), Policy("oracle", batch_size)]
    for b in budgets:
        out += [Policy("periodic-random", b), Policy("loop-uncertainty", b)]
    for rb in sorted({min(batch_size, b * m) for b in budgets for m in multipliers}):
        out.append(Policy("loop-random", rb))
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"policies {sorted(unknown)} are unknown: use some of {list(KINDS)}")
    return [p for p in out if p.kind in kinds]


def _job(args: tuple[str, int, Policy, Settings, LabelStudioSource | None]) -> dict:
    path, seed, policy, settings, labelstudio = args
    world = build_world(path, seed, settings)
    if labelstudio is None:
        return replay(world, policy, settings)
    from flows.bench_labelstudio import open_labeler

    with open_labeler(labelstudio, world, policy.name) as labeler:
        return replay(world, policy, settings, labeler)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _key(settings: Settings, seed: int, policy: str, via_labelstudio: bool = False) -> str:
    # labels through Label Studio are the same labels, but a run asked for them reuses only
    # runs that went through it too
    extra = ["labelstudio"] if via_labelstudio else []
    return json.dumps([asdict(settings), seed, policy, *extra], sort_keys=True)


def run_jobs(
    path: str,
    seeds: list[int],
    policies: list[Policy],
    settings: Settings,
    workers: int,
    on_done: Callable[[dict], None],
    runs_log: Path | None = None,
    labelstudio: LabelStudioSource | None = None,
) -> list[dict]:
    """Run every (seed, policy) job. With `runs_log` (JSON lines), each finished run is
    appended as it ends, and runs already there with the same settings are reused: an
    interrupted benchmark resumes where it stopped. With `labelstudio`, each job labels
    through that server (`flows.bench_labelstudio`) instead of in process."""
    via = labelstudio is not None
    cost = {"oracle": 0, "loop-random": 1, "periodic-random": 2, "loop-uncertainty": 2, "static": 3}
    done: dict[str, dict] = {}
    if runs_log is not None and runs_log.is_file():
        for line in runs_log.read_text().splitlines():
            rec = json.loads(line)
            done[rec["key"]] = rec["run"]
    reused = [
        done[k] for sd in seeds for p in policies if (k := _key(settings, sd, p.name, via)) in done
    ]
    for r in reused:
        on_done(r)
    jobs = [
        (path, sd, p, settings, labelstudio)
        for sd in seeds
        for p in sorted(policies, key=lambda p: (cost[p.kind], -p.budget))
        if _key(settings, sd, p.name, via) not in done
    ]
    if runs_log is not None:
        runs_log.parent.mkdir(parents=True, exist_ok=True)
        report = on_done

        def on_done(r: dict) -> None:
            with runs_log.open("a") as f:
                f.write(
                    json.dumps({"key": _key(settings, r["seed"], r["policy"], via), "run": r})
                    + "\n"
                )
            report(r)

    results = list(reused)
    if workers <= 1 or not jobs:
        _init_worker()
        for j in jobs:
            results.append(_job(j))
            on_done(results[-1])
        return results
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        for fut in cf.as_completed([pool.submit(_job, j) for j in jobs]):
            results.append(fut.result())
            on_done(results[-1])
    return results


def run_benchmark(
    path: str,
    seeds: int,
    settings: Settings,
    shares: list[float],
    multipliers: list[int],
    workers: int,
    progress: Callable | None = None,
    command: str = "",
    kinds: tuple[str, ...] = KINDS,
    runs_log: Path | None = None,
    labelstudio: LabelStudioSource | None = None,
) -> dict:
    """Run the benchmark and summarise it; `labelstudio` sends every label through that
    server (recorded as `settings.labels`), default in process."""
    sc = load_scenario(path)
    policies = make_policies(sc.batch_size, shares, multipliers, kinds)
    seed_list = list(range(seeds))
    t0 = time.perf_counter()
    results = run_jobs(
        str(Path(path)),
        seed_list,
        policies,
        settings,
        workers,
        progress or (lambda r: None),
        runs_log,
        labelstudio,
    )
    doc = summarise(
        str(path),
        seed_list,
        policies,
        settings,
        results,
        time.perf_counter() - t0,
        command,
        multipliers,
    )
    doc["settings"]["labels"] = "in-process" if labelstudio is None else "labelstudio"
    return doc
